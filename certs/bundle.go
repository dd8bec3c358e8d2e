package certs

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// MaxBundle is the most certificates ParseBundle reads from one bundle; a
// caBundle holds a handful of CAs, never hundreds.
const MaxBundle = 64

// ErrNoCertificate is returned by ParseBundle for input without any
// certificate.
var ErrNoCertificate = errors.New("no PEM certificate")

// ParseBundle reads a concatenation of PEM CERTIFICATE blocks. Anything else
// (another block type, text between blocks, a block that does not parse,
// more than MaxBundle certificates) is an error: a trust bundle is either
// exactly what we wrote or it is corrupt.
func ParseBundle(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for len(bytes.TrimSpace(rest)) > 0 {
		start := bytes.Index(rest, []byte("-----BEGIN "))
		if start < 0 || len(bytes.TrimSpace(rest[:start])) > 0 {
			return nil, fmt.Errorf("text that is not PEM after certificate %d", len(certs))
		}
		block, next := pem.Decode(rest[start:])
		if block == nil {
			return nil, fmt.Errorf("malformed PEM block after certificate %d", len(certs))
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, not CERTIFICATE", len(certs)+1, block.Type)
		}
		if len(certs) == MaxBundle {
			return nil, fmt.Errorf("more than %d certificates", MaxBundle)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
		rest = next
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return certs, nil
}

// EncodeBundle writes certs as concatenated PEM CERTIFICATE blocks.
func EncodeBundle(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// ParseKey reads one PEM private key: PKCS#8, SEC 1 (EC) or PKCS#1 (RSA).
func ParseKey(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("text after the private key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, which cannot sign", block.Type, key)
	}
	return signer, nil
}

// KeyMatches reports whether key is the private key of cert.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// Fingerprint is the SHA-256 of a certificate's DER bytes.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of c.
func FingerprintOf(c *x509.Certificate) Fingerprint { return sha256.Sum256(c.Raw) }

// MergeBundle returns the union of bundles in order of first appearance,
// without duplicates and without certificates that expired before now. The
// first bundle's first certificate stays first.
func MergeBundle(now time.Time, bundles ...[]*x509.Certificate) []*x509.Certificate {
	seen := map[Fingerprint]bool{}
	var out []*x509.Certificate
	for _, b := range bundles {
		for _, c := range b {
			fp := FingerprintOf(c)
			if seen[fp] || now.After(c.NotAfter) {
				continue
			}
			seen[fp] = true
			out = append(out, c)
		}
	}
	return out
}

// SameSet reports whether a and b hold the same certificates, in any order.
func SameSet(a, b []*x509.Certificate) bool {
	set := map[Fingerprint]int{}
	for _, c := range a {
		set[FingerprintOf(c)] |= 1
	}
	for _, c := range b {
		set[FingerprintOf(c)] |= 2
	}
	for _, v := range set {
		if v != 3 {
			return false
		}
	}
	return true
}

// Contains reports whether bundle holds c.
func Contains(bundle []*x509.Certificate, c *x509.Certificate) bool {
	fp := FingerprintOf(c)
	for _, b := range bundle {
		if FingerprintOf(b) == fp {
			return true
		}
	}
	return false
}

// Verifies reports whether leaf chains to a root in bundle at now, as a TLS
// server certificate.
func Verifies(bundle []*x509.Certificate, leaf *x509.Certificate, now time.Time) bool {
	pool := x509.NewCertPool()
	for _, c := range bundle {
		pool.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err == nil
}

// ParseLenient returns the certificates of data that parse and skips the
// rest. It reads caBundles that others may have written.
func ParseLenient(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for len(out) < MaxBundle {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
	return out
}
