// Package certs keeps the webhook's serving certificate when cert-manager is
// absent (the chart's self-managed mode, cmd/sandbox-webhook --cert-mode=self).
//
// Every webhook replica runs one Rotator. It converges on a single Secret in
// the webhook's namespace, read and written through the API server (never the
// mounted volume) with optimistic concurrency on resourceVersion, so replicas
// that race agree on the winner's certificates:
//
//	type: kubernetes.io/tls
//	tls.crt  the serving certificate (leaf only), signed by the first CA of ca.crt
//	tls.key  its private key (PKCS#8)
//	ca.crt   the trust bundle, newest CA first: the signing CA, then older CAs
//	         that are still trusted, for the overlap after a rotation
//	ca.key   the private key of the signing CA (the first certificate of ca.crt)
//
// The Rotator writes the trust bundle into the caBundle of every webhook of one
// MutatingWebhookConfiguration (and touches nothing else of it), serves the
// serving certificate from memory through tls.Config.GetCertificate, and
// reloads it whenever the Secret changes, without a restart.
//
// Rotation keeps every admission working:
//   - a serving certificate is renewed from the same CA when less than the
//     renewal window (a third of its lifetime by default) remains;
//   - a CA is renewed the same way, in two steps: the new CA is put first in
//     the bundle (Secret and webhook configuration) while the old serving
//     certificate keeps serving, and only once this replica has seen the new
//     CA in the webhook configuration for the propagation delay is a serving
//     certificate issued from it;
//   - the previous CA leaves the bundle (Secret and webhook configuration) once
//     a serving certificate of the new CA has been issued for the overlap
//     (Config.CAOverlap, --ca-overlap, 24h by default), so that a rotation
//     retires a CA that may have leaked instead of trusting it for the rest
//     of its life; the overlap is longer than a sync interval, so every
//     replica serves the new certificate by then;
//   - an expired CA leaves the bundle: no serving certificate outlives the CA
//     that signed it, so none that chains to it is still valid.
//     The caBundle written is the union of the Secret's bundle and what the
//     configuration already trusts, minus expired certificates and minus
//     older CAs past the overlap, so a replica with a stale view never
//     removes a CA that another one just added (a newer one).
//
// A Secret that cannot be used (unparseable PEM, a key that does not match its
// certificate, an expired CA or serving certificate) is replaced, and a
// Warning Event on the Secret says why.
//
// Readiness (ReadyChecker) stays false until a valid serving certificate is
// loaded and the webhook configuration's caBundle verifies it.
//
// Every change is an Event on the Secret (reasons CertificatesCreated,
// CARotated, ServingCertificateRenewed, ExpiredCAsPruned, PreviousCAsRetired,
// and the Warning
// CorruptSecretReplaced) and shows in the metrics
// sandbox_webhook_certificate_expiry_timestamp_seconds and
// sandbox_webhook_certificate_rotations_total.
//
// The Rotator needs, in its namespace, create on Secrets and get and update on
// its Secret; get and patch on its MutatingWebhookConfiguration; and create
// on events.k8s.io Events.
package certs
