package topics_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// testPKI is a throw-away certificate authority and a server certificate for 127.0.0.1 signed
// by it, generated at test time so no key material lives in the repository.
type testPKI struct {
	// CAPool trusts only the test CA.
	CAPool *x509.CertPool
	// Server is the broker's certificate chain and key.
	Server tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	now := time.Now()
	ca, caDER, caKey := issueCert(t, &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "crm-pipeline test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, nil, nil)
	_, srvDER, srvKey := issueCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}, ca, caKey)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		CAPool: pool,
		Server: tls.Certificate{
			Certificate: [][]byte{srvDER, caDER},
			PrivateKey:  srvKey,
		},
	}
}

// issueCert makes a fresh P-256 key and a certificate of it from template, signed by parent
// with parentKey, or self-signed when parent is nil: the CA and the server certificate differ
// only in their templates and signer.
func issueCert(t *testing.T, template, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, []byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, der, key
}

// ServerTLS is the listener configuration for the broker.
func (p testPKI) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Server}, MinVersion: tls.VersionTLS12}
}

// ClientTLS trusts the test CA and verifies the broker as 127.0.0.1.
func (p testPKI) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: p.CAPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
