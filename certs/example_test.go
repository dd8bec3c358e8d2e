package certs_test

import (
	"crypto/x509"
	"fmt"
	"time"

	"sandbox.io/injector/certs"
)

// A CA rotation as the Rotator does it: the new CA joins the bundle first,
// so both serving certificates verify while replicas switch; the old CA
// leaves only when it expires, and with it every certificate it signed.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sans := []string{"sandbox-injector.sandbox-system.svc", "sandbox-injector.sandbox-system.svc.cluster.local"}

	oldCA, _ := certs.NewCA("sandbox-injector-ca", 90*time.Minute, now)
	oldServing, _ := certs.NewServing(oldCA, sans, 45*time.Minute, now.Add(30*time.Minute))

	// The CA is due when a third of its lifetime remains.
	rotateAt := certs.RenewAt(oldCA.Cert, 90*time.Minute, 0)
	newCA, _ := certs.NewCA("sandbox-injector-ca", 90*time.Minute, rotateAt)
	bundle := certs.MergeBundle(rotateAt, []*x509.Certificate{newCA.Cert}, []*x509.Certificate{oldCA.Cert})
	newServing, _ := certs.NewServing(newCA, sans, 45*time.Minute, rotateAt)

	fmt.Println("CA due after", rotateAt.Sub(now))
	fmt.Println("CAs in the bundle:", len(bundle))
	fmt.Println("old serving trusted:", certs.Verifies(bundle, oldServing.Cert, rotateAt))
	fmt.Println("new serving trusted:", certs.Verifies(bundle, newServing.Cert, rotateAt))
	later := oldCA.Cert.NotAfter.Add(time.Second)
	fmt.Println("CAs once the old one expired:", len(certs.MergeBundle(later, bundle)))
	// Output:
	// CA due after 1h0m0s
	// CAs in the bundle: 2
	// old serving trusted: true
	// new serving trusted: true
	// CAs once the old one expired: 1
}
