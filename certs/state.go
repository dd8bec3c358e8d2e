package certs

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the certificate Secret besides corev1.TLSCertKey (tls.crt) and
// corev1.TLSPrivateKeyKey (tls.key).
const (
	// KeyCABundle holds the trust bundle, newest CA first; the first is the
	// CA that signs tls.crt.
	KeyCABundle = "ca.crt"
	// KeyCAKey holds the private key of the first CA of KeyCABundle.
	KeyCAKey = "ca.key"
)

// State is the content of the certificate Secret.
type State struct {
	// Bundle is the trust bundle; Bundle[0] is Signer's certificate.
	Bundle []*x509.Certificate
	// Signer is the CA that signs serving certificates.
	Signer *KeyPair
	// Serving is the serving certificate; nil when it is unusable.
	Serving *KeyPair
}

// Data returns the Secret data of s.
func (s *State) Data() map[string][]byte {
	return map[string][]byte{
		KeyCABundle:             EncodeBundle(s.Bundle),
		KeyCAKey:                s.Signer.KeyPEM,
		corev1.TLSCertKey:       s.Serving.CertPEM,
		corev1.TLSPrivateKeyKey: s.Serving.KeyPEM,
	}
}

// ParseSecret reads Secret data at now. caErr says why the CA part is
// unusable (then the whole Secret must be replaced); otherwise servingErr
// says why the serving certificate is unusable (then only it is replaced).
func ParseSecret(data map[string][]byte, now time.Time) (st State, caErr, servingErr error) {
	bundle, err := ParseBundle(data[KeyCABundle])
	if err != nil {
		return st, fmt.Errorf("%s: %w", KeyCABundle, err), nil
	}
	signer, err := parsePair(bundle[0], data[KeyCAKey], KeyCAKey)
	if err != nil {
		return st, err, nil
	}
	if !signer.Cert.IsCA || signer.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return st, fmt.Errorf("the first certificate of %s is not a CA", KeyCABundle), nil
	}
	if now.After(signer.Cert.NotAfter) {
		return st, fmt.Errorf("the CA expired at %s", signer.Cert.NotAfter.UTC().Format(time.RFC3339)), nil
	}
	st.Bundle, st.Signer = bundle, signer
	serving, err := parseServing(data, bundle, now)
	if err != nil {
		return st, nil, err
	}
	st.Serving = serving
	return st, nil, nil
}

func parsePair(cert *x509.Certificate, keyPEM []byte, keyName string) (*KeyPair, error) {
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyName, err)
	}
	if !KeyMatches(cert, key) {
		return nil, fmt.Errorf("%s does not match its certificate", keyName)
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: EncodeBundle([]*x509.Certificate{cert}), KeyPEM: keyPEM}, nil
}

func parseServing(data map[string][]byte, bundle []*x509.Certificate, now time.Time) (*KeyPair, error) {
	certs, err := ParseBundle(data[corev1.TLSCertKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", corev1.TLSCertKey, err)
	}
	pair, err := parsePair(certs[0], data[corev1.TLSPrivateKeyKey], corev1.TLSPrivateKeyKey)
	if err != nil {
		return nil, err
	}
	if now.After(pair.Cert.NotAfter) {
		return nil, fmt.Errorf("the serving certificate expired at %s", pair.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if !Verifies(bundle, pair.Cert, now) {
		return nil, fmt.Errorf("the serving certificate does not chain to a CA of %s", KeyCABundle)
	}
	pair.CertPEM = data[corev1.TLSCertKey]
	return pair, nil
}

// Policy is what certificates should look like.
type Policy struct {
	// CAName is the CA's common name.
	CAName string
	// SANs are the serving certificate's DNS names and IP addresses.
	SANs []string
	// CALifetime and ServingLifetime are the certificates' lifetimes.
	CALifetime, ServingLifetime time.Duration
	// RenewBefore is the renewal window; zero means a third of each lifetime.
	RenewBefore time.Duration
	// CAOverlap is how long the CAs before the signing one stay in the
	// bundle once a serving certificate of the signing CA is served; zero
	// keeps them until they expire.
	CAOverlap time.Duration
}

// Change is one thing Next did to the Secret.
type Change struct {
	// Certificate is "ca" or "serving".
	Certificate string
	// Warning is true for a replaced unusable certificate.
	Warning bool
	// Reason is an UpperCamelCase Event reason; Note says why.
	Reason, Note string
}

// Event reasons of Change.
const (
	ReasonCreated            = "CertificatesCreated"
	ReasonReplaced           = "CorruptSecretReplaced"
	ReasonCARotated          = "CARotated"
	ReasonServingRenewed     = "ServingCertificateRenewed"
	ReasonExpiredCAsPruned   = "ExpiredCAsPruned"
	ReasonPreviousCAsRetired = "PreviousCAsRetired"
)

// Next decides the Secret's next state from its data (nil when it does not
// exist) at now. trusted reports whether a CA has been in the webhook
// configuration's caBundle long enough for API servers to trust it. Next
// returns nil when the Secret should stay as it is, and a note on why it is
// waiting, if it is.
func (p Policy) Next(data map[string][]byte, now time.Time, trusted func(*x509.Certificate) bool) (next *State, changes []Change, waiting string, err error) {
	if data == nil {
		st, err := p.fresh(nil, now)
		if err != nil {
			return nil, nil, "", err
		}
		return st, []Change{{Certificate: "ca", Reason: ReasonCreated, Note: "created a CA and a serving certificate"}}, "", nil
	}
	st, caErr, servingErr := ParseSecret(data, now)
	if caErr != nil {
		return p.replaceCA(data, caErr, now)
	}
	rotated, err := p.rotateCA(&st, now)
	if err != nil {
		return nil, nil, "", err
	}
	changes = append(changes, rotated...)
	changes = append(changes, p.pruneBundle(&st, servingErr, now)...)
	renewed, waiting, err := p.renewServing(&st, servingErr, now, trusted)
	if err != nil {
		return nil, nil, "", err
	}
	changes = append(changes, renewed...)
	if len(changes) == 0 {
		return nil, nil, waiting, nil
	}
	return &st, changes, waiting, nil
}

// replaceCA starts over from a Secret whose CA part is unusable (caErr).
func (p Policy) replaceCA(data map[string][]byte, caErr error, now time.Time) (*State, []Change, string, error) {
	// Keep the CAs that still parse in the bundle: replicas may still
	// serve certificates they signed. They go after the overlap.
	old, _ := ParseBundle(data[KeyCABundle])
	st, err := p.fresh(old, now)
	if err != nil {
		return nil, nil, "", err
	}
	return st, []Change{{Certificate: "ca", Warning: true, Reason: ReasonReplaced,
		Note: fmt.Sprintf("replaced the CA and serving certificate: %v", caErr)}}, "", nil
}

// rotateCA puts a new signing CA first in the bundle once the current one
// is due for renewal.
func (p Policy) rotateCA(st *State, now time.Time) ([]Change, error) {
	if now.Before(RenewAt(st.Signer.Cert, p.CALifetime, p.RenewBefore)) {
		return nil, nil
	}
	ca, err := NewCA(p.CAName, p.CALifetime, now)
	if err != nil {
		return nil, err
	}
	st.Signer = ca
	st.Bundle = MergeBundle(now, []*x509.Certificate{ca.Cert}, st.Bundle)
	return []Change{{Certificate: "ca", Reason: ReasonCARotated,
		Note: "added a new CA to the bundle; the serving certificate follows once API servers trust it"}}, nil
}

// pruneBundle drops the expired CAs from the bundle, and the previous ones
// once they are Retired.
func (p Policy) pruneBundle(st *State, servingErr error, now time.Time) []Change {
	var changes []Change
	if pruned := MergeBundle(now, st.Bundle); len(pruned) != len(st.Bundle) {
		changes = append(changes, Change{Certificate: "ca", Reason: ReasonExpiredCAsPruned,
			Note: fmt.Sprintf("removed %d expired CA(s) from the bundle", len(st.Bundle)-len(pruned))})
		st.Bundle = pruned
	}
	if servingErr == nil && len(st.Bundle) > 1 && p.Retired(st, now) {
		changes = append(changes, Change{Certificate: "ca", Reason: ReasonPreviousCAsRetired,
			Note: fmt.Sprintf("removed %d previous CA(s) from the bundle: the new CA's certificate has been served for the overlap of %s", len(st.Bundle)-1, p.CAOverlap)})
		st.Bundle = st.Bundle[:1]
	}
	return changes
}

// renewServing issues a new serving certificate when servingRenewalReason
// gives one, unless it would be signed by a CA API servers do not trust yet
// (then it says it is waiting).
func (p Policy) renewServing(st *State, servingErr error, now time.Time, trusted func(*x509.Certificate) bool) (changes []Change, waiting string, err error) {
	why := p.servingRenewalReason(st, servingErr, now)
	if why == "" {
		return nil, "", nil
	}
	signedBySigner := st.Serving != nil && st.Serving.Cert.CheckSignatureFrom(st.Signer.Cert) == nil
	if servingErr == nil && !signedBySigner && !trusted(st.Signer.Cert) {
		return nil, "the serving certificate waits until API servers trust the new CA", nil
	}
	sans := p.SANs
	if st.Serving != nil && servingErr == nil && why == reasonLacksName {
		sans = mergeSANs(sansOf(st.Serving.Cert), p.SANs)
	}
	serving, err := NewServing(st.Signer, sans, p.ServingLifetime, now)
	if err != nil {
		return nil, "", err
	}
	st.Serving = serving
	c := Change{Certificate: "serving", Reason: ReasonServingRenewed, Note: "issued a new serving certificate: " + why}
	if servingErr != nil {
		c.Warning, c.Reason, c.Note = true, ReasonReplaced, "replaced the serving certificate: "+why
	}
	return []Change{c}, "", nil
}

// reasonLacksName is servingRenewalReason's answer for a certificate that
// misses a name of the policy (the names it has are kept).
const reasonLacksName = "it lacks a name"

// servingRenewalReason says why st's serving certificate must be replaced;
// empty when it stays.
func (p Policy) servingRenewalReason(st *State, servingErr error, now time.Time) string {
	switch {
	case servingErr != nil:
		// Broken already: nothing to keep serving, replace it at once.
		return servingErr.Error()
	case !covers(sansOf(st.Serving.Cert), sortedSANs(p.SANs)):
		// Only missing names count: replicas of two versions during a
		// rolling update then agree on a certificate with both sets of
		// names instead of replacing each other's on every pass.
		return reasonLacksName
	case !now.Before(RenewAt(st.Serving.Cert, p.ServingLifetime, p.RenewBefore)):
		return "it is due for renewal"
	case st.Serving.Cert.CheckSignatureFrom(st.Signer.Cert) != nil:
		return "a new CA signs"
	}
	return ""
}

// Retired reports whether the CAs before st's signing CA may leave the trust
// bundle at now: the serving certificate is the signing CA's, and was
// issued at least CAOverlap ago, so every replica has loaded it (an overlap
// longer than the sync interval) and nothing still served chains to an
// older CA. Certificates are valid from ClockSkew before they are issued.
func (p Policy) Retired(st *State, now time.Time) bool {
	if p.CAOverlap <= 0 || st.Serving == nil || st.Signer == nil ||
		st.Serving.Cert.CheckSignatureFrom(st.Signer.Cert) != nil {
		return false
	}
	issued := st.Serving.Cert.NotBefore.Add(ClockSkew)
	return !now.Before(issued.Add(p.CAOverlap))
}

// KeepsOther reports whether a CA that the webhook configuration trusts
// but st's bundle lacks stays in the caBundle at now: a CA newer than st's
// signing one comes from a replica that rotated after st was read (a stale
// view must not remove it); an older one stays until Retired.
func (p Policy) KeepsOther(st *State, c *x509.Certificate, now time.Time) bool {
	if st.Signer == nil || c.NotBefore.After(st.Signer.Cert.NotBefore) {
		return true
	}
	return !p.Retired(st, now)
}

// fresh returns a new CA and serving certificate, keeping the unexpired
// certificates of old after the new CA in the bundle.
func (p Policy) fresh(old []*x509.Certificate, now time.Time) (*State, error) {
	ca, err := NewCA(p.CAName, p.CALifetime, now)
	if err != nil {
		return nil, err
	}
	serving, err := NewServing(ca, p.SANs, p.ServingLifetime, now)
	if err != nil {
		return nil, err
	}
	return &State{Bundle: MergeBundle(now, []*x509.Certificate{ca.Cert}, old), Signer: ca, Serving: serving}, nil
}

func sansOf(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedSANs(sans []string) []string {
	out := make([]string, 0, len(sans))
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			s = ip.String()
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// covers reports whether have (sorted) holds every name of want.
func covers(have, want []string) bool {
	for _, w := range want {
		if _, ok := slices.BinarySearch(have, w); !ok {
			return false
		}
	}
	return true
}

// mergeSANs returns want followed by the names of have it lacks.
func mergeSANs(have, want []string) []string {
	out := slices.Clone(want)
	norm := sortedSANs(want)
	for _, h := range have {
		if _, ok := slices.BinarySearch(norm, h); !ok {
			out = append(out, h)
		}
	}
	return out
}
