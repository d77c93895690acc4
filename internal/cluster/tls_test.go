package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/testutil"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate for cn into dir, and returns their files.
type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func makePKI(t *testing.T, dir, cn string) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := pki{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		cert, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, cert, "CERTIFICATE", der)
		writePEM(t, keyFile, "EC PRIVATE KEY", kb)
		return cert, keyFile
	}
	p.serverCert, p.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	p.clientCert, p.clientKey = issue(cn, 3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSAndAuth: an etcd that serves clients over TLS only and requires
// a client certificate, then etcd's own auth. A host joins with the CA,
// its certificate and key; without a certificate, or with a CA that did
// not sign the server's, it is refused; with auth enabled, it joins with
// its user and the password from password_file, and not with a wrong one.
func TestTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	p := makePKI(t, dir, "autoheal")
	clientPair, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(p.ca)
	pool.AppendCertsFromPEM(caPEM)
	e := testutil.StartEtcdTLS(t, &testutil.EtcdTLS{CAFile: p.ca, CertFile: p.serverCert, KeyFile: p.serverKey,
		Client: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientPair}}})
	c := testCluster(t, e.Endpoints(), "h1", "h2")
	c.Etcd.DialTimeout = config.Duration(time.Second)
	c.Etcd.CAFile, c.Etcd.CertFile, c.Etcd.KeyFile = p.ca, p.clientCert, p.clientKey
	m := joinHost(t, c, "h1", testConfig)
	if err := m.Campaign(t.Context()); err != nil {
		t.Fatal(err)
	}

	refused := func(what string, mod func(*config.Cluster)) {
		t.Helper()
		bad := *c
		mod(&bad)
		if _, err := Join(t.Context(), &bad, "h2", []byte(testConfig)); err == nil || !strings.Contains(err.Error(), "did not answer within 5s (check the endpoints, the TLS files and the credentials)") {
			t.Fatalf("%s: %v", what, err)
		}
	}
	refused("no client certificate", func(b *config.Cluster) { b.Etcd.CertFile, b.Etcd.KeyFile = "", "" })
	other := makePKI(t, t.TempDir(), "autoheal")
	refused("another CA", func(b *config.Cluster) { b.Etcd.CAFile = other.ca })

	// etcd's own auth: root, and a user for autoheal with its prefix.
	cli := m.Client()
	ctx := t.Context()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "autoheal"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "autoheal", prefix(c), "/autoheal/"+c.Name+"0", 2 /* readwrite */)
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "ah", "s3cret"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "ah", "autoheal"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	pw := filepath.Join(dir, "password")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	withAuth := *c
	withAuth.Etcd.Username, withAuth.Etcd.PasswordFile = "ah", pw
	m2, err := Join(t.Context(), &withAuth, "h2", []byte(testConfig))
	if err != nil {
		t.Fatalf("join with etcd's auth: %v", err)
	}
	defer m2.Leave(t.Context())
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("nope\n"), 0o600)
	withAuth.Etcd.PasswordFile = wrong
	if _, err := Join(t.Context(), &withAuth, "h2", []byte(testConfig)); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("a wrong password: %v", err)
	}
}
