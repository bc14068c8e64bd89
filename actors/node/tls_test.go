package node_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/exchange/exchangetest"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// tlsX adds the TLS configs of files to an exchange config.
func tlsX(t testing.TB, xc exchange.Config, files exchange.TLSFiles) exchange.Config {
	t.Helper()
	server, client, err := files.Load()
	if err != nil {
		t.Fatal(err)
	}
	xc.ServerTLS, xc.ClientTLS = server, client
	return xc
}

// refusedFor waits until p's only dial target is rejected with a reason
// containing want, then checks it is not retried.
func refusedFor(t *testing.T, p *proc, want string) {
	t.Helper()
	nodetest.WaitFor(t, waitLong, func() error {
		ts := p.x("").Targets()
		if len(ts) != 1 || ts[0].State != "rejected" || !strings.Contains(ts[0].LastErr, want) {
			return fmt.Errorf("targets %+v; want rejected with %q", ts, want)
		}
		return nil
	})
	if l := p.rt().Lookup("math"); len(l) != 0 {
		t.Errorf("the refused %s sees math: %+v", p.name, l)
	}
}

// serverLogged waits until p logged a warning about a failed TLS
// handshake from a loopback address, with a reason containing want.
func serverLogged(t *testing.T, p *proc, want string) {
	t.Helper()
	nodetest.WaitFor(t, waitLong, func() error {
		if l := p.logs.lines("level=WARN", `msg="TLS handshake failed"`, "remote=127.0.0.1:", want); len(l) == 0 {
			return fmt.Errorf("%s logged no TLS handshake failure with %q", p.name, want)
		}
		return nil
	})
}

// TestTLSLink checks a client linked over TLS (the server's certificate
// verified against a CA, no client certificate) calls through it.
func TestTLSLink(t *testing.T) {
	ca := exchangetest.NewCA(t, "ca")
	cert, key := ca.Issue("x")
	x := startNode(t, "x", tlsX(t, serverX("", listen(t)), exchange.TLSFiles{CertFile: cert, KeyFile: key}))
	startMath(t, x, "math")
	c := startNode(t, "c", tlsX(t, clientX("", x.Addr()), exchange.TLSFiles{CAFile: ca.File}))
	visible(t, c, "math", 1)
	mustMultiply(t, c, service.Name("math"))
}

// TestMutualTLS checks mutual TLS: a server mesh over --connect, both
// presenting and verifying certificates of one CA, and a client with its
// own certificate calling a service on the far server.
func TestMutualTLS(t *testing.T) {
	ca := exchangetest.NewCA(t, "ca")
	a := startNode(t, "a", tlsX(t, serverX("", listen(t)), ca.Endpoint("a")))
	startMath(t, a, "math")
	b := startNode(t, "b", tlsX(t, serverX("", listen(t), a.Addr()), ca.Endpoint("b")))
	linkedTo(t, b, a)
	c := startNode(t, "c", tlsX(t, clientX("", b.Addr()), ca.Endpoint("c")))
	visible(t, c, "math", 1)
	mustMultiply(t, c, service.Name("math"))
}

// TestTLSUntrustedServer checks a server certificate from an unknown CA:
// the dialler refuses it with the verification error (and tries again
// only after a growing delay); the server logs the client's alert.
func TestTLSUntrustedServer(t *testing.T) {
	ca, other := exchangetest.NewCA(t, "ca"), exchangetest.NewCA(t, "other")
	x := startNode(t, "x", tlsX(t, serverX("", listen(t)), ca.Endpoint("x")))
	startMath(t, x, "math")
	c := startNode(t, "c", tlsX(t, clientX("", x.Addr()), other.Endpoint("c")))
	refusedFor(t, c, "TLS handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority")
	if l := c.logs.lines("level=ERROR", "retrying later", "certificate signed by unknown authority"); len(l) == 0 {
		t.Errorf("the client logged no error about the refusal:\n%s", c.logs.String())
	}
	serverLogged(t, x, "remote error: tls: bad certificate")
}

// TestTLSRootCAsSetByHand checks that RootCAs set on a configuration
// Load made are the ones a dial verifies against: the reloading of the CA
// file must not override a user's choice.
func TestTLSRootCAsSetByHand(t *testing.T) {
	ca, other := exchangetest.NewCA(t, "ca"), exchangetest.NewCA(t, "other")
	x := startNode(t, "x", tlsX(t, serverX("", listen(t)), ca.Endpoint("x")))
	startMath(t, x, "math")
	_, client, err := ca.Endpoint("c").Load()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(other.File)
	if err != nil {
		t.Fatal(err)
	}
	client.RootCAs = x509.NewCertPool()
	client.RootCAs.AppendCertsFromPEM(pem) // trusts other only: x must not verify
	xc := clientX("", x.Addr())
	xc.ClientTLS = client
	c := startNode(t, "c", xc)
	refusedFor(t, c, "certificate signed by unknown authority")
}

// TestTLSClientCertificateRequired checks mutual TLS turns away a client
// without a certificate, and one whose certificate another CA signed,
// each with the reason on both sides and no link.
func TestTLSClientCertificateRequired(t *testing.T) {
	// The impostor has the CA's name: a client offers only a certificate
	// whose issuer the server names as acceptable, and sends none else.
	ca, other := exchangetest.NewCA(t, "ca"), exchangetest.NewCA(t, "ca")
	x := startNode(t, "x", tlsX(t, serverX("", listen(t)), ca.Endpoint("x")))
	startMath(t, x, "math")

	t.Run("no certificate", func(t *testing.T) {
		c := startNode(t, "c", tlsX(t, clientX("", x.Addr()), exchange.TLSFiles{CAFile: ca.File}))
		refusedFor(t, c, "TLS handshake failed: remote error: tls: certificate required")
		serverLogged(t, x, "client didn't provide a certificate")
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		cert, key := other.Issue("c")
		c := startNode(t, "c", tlsX(t, clientX("", x.Addr()), exchange.TLSFiles{CertFile: cert, KeyFile: key, CAFile: ca.File}))
		refusedFor(t, c, "TLS handshake failed: remote error: tls: unknown certificate authority")
		serverLogged(t, x, "failed to verify certificate: x509: certificate signed by unknown authority")
	})
	if n := len(x.Links()); n != 0 {
		t.Errorf("x has %d links to refused clients: %+v", n, x.Links())
	}
}

// TestTLSAndPlainDoNotMix checks a plain client dialling a TLS node and a
// TLS client dialling a plain node: both are told why.
func TestTLSAndPlainDoNotMix(t *testing.T) {
	ca := exchangetest.NewCA(t, "ca")
	t.Run("plain client, TLS server", func(t *testing.T) {
		x := startNode(t, "x", tlsX(t, serverX("", listen(t)), ca.Endpoint("x")))
		startMath(t, x, "math")
		c := startNode(t, "c", clientX("", x.Addr()))
		refusedFor(t, c, "rejected by peer: TLS required")
		serverLogged(t, x, "the peer does not speak TLS")
	})
	t.Run("TLS client, plain server", func(t *testing.T) {
		x := startNode(t, "x", serverX("", listen(t)))
		startMath(t, x, "math")
		c := startNode(t, "c", tlsX(t, clientX("", x.Addr()), ca.Endpoint("c")))
		refusedFor(t, c, "TLS handshake failed: the peer does not speak TLS")
		nodetest.WaitFor(t, waitLong, func() error {
			if l := x.logs.lines("level=WARN", "it speaks TLS, and this endpoint has TLS off"); len(l) == 0 {
				return fmt.Errorf("x did not log the TLS client")
			}
			return nil
		})
	})
}

// TestTLSFilesLoad checks the helper's checks and what it builds.
func TestTLSFilesLoad(t *testing.T) {
	ca := exchangetest.NewCA(t, "ca")
	cert, key := ca.Issue("x")
	server, client, err := exchange.TLSFiles{CertFile: cert, KeyFile: key, CAFile: ca.File}.Load()
	if err != nil || server == nil || client == nil || server.GetConfigForClient == nil || client.GetClientCertificate == nil {
		t.Fatalf("Load = %+v, %+v, %v", server, client, err)
	}
	// What a handshake gets: the certificate, and client certificates
	// required and checked against the CA.
	conn, err := server.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil || conn.ClientAuth != tls.RequireAndVerifyClientCert || conn.ClientCAs == nil || len(conn.Certificates) != 1 ||
		conn.MinVersion != tls.VersionTLS12 || client.MinVersion != tls.VersionTLS12 || client.RootCAs == nil {
		t.Fatalf("the listener's config for a handshake: %+v, %v; the dialler's: %+v", conn, err, client)
	}
	if c, err := client.GetClientCertificate(&tls.CertificateRequestInfo{}); err != nil || c == nil || len(c.Certificate) == 0 {
		t.Fatalf("the dialler's certificate: %v, %v", c, err)
	}
	if server, client, err = (exchange.TLSFiles{}).Load(); server != nil || client != nil || err != nil {
		t.Fatalf("no files: %v, %v, %v; want plain TCP", server, client, err)
	}
	if server, client, err = (exchange.TLSFiles{CAFile: ca.File}).Load(); server != nil || client == nil || err != nil {
		t.Fatalf("CA only: %v, %v, %v; want a client config", server, client, err)
	}
	for _, tc := range []struct {
		files exchange.TLSFiles
		want  string
	}{
		{exchange.TLSFiles{CertFile: cert}, "needs its key"},
		{exchange.TLSFiles{KeyFile: key}, "needs its key"},
		{exchange.TLSFiles{CertFile: cert, KeyFile: filepath.Join(t.TempDir(), "missing.key")}, "no such file"},
		{exchange.TLSFiles{CertFile: cert, KeyFile: ca.File}, "cannot load certificate"},
		{exchange.TLSFiles{CAFile: filepath.Join(t.TempDir(), "missing.pem")}, "cannot read CA file"},
		{exchange.TLSFiles{CAFile: key}, "holds no PEM certificate"},
	} {
		if _, _, err := tc.files.Load(); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v; want one line with %q", tc.files, err, tc.want)
		}
	}
}

// TestTLSReload checks that a node picks up a renewed certificate and a
// changed CA file for new links without a restart, while its links keep
// going.
func TestTLSReload(t *testing.T) {
	ca := exchangetest.NewCA(t, "ca")
	files := ca.Endpoint("x")
	x := startNode(t, "x", tlsX(t, serverX("", listen(t)), files))
	startMath(t, x, "math")
	c := startNode(t, "c", tlsX(t, clientX("", x.Addr()), ca.Endpoint("c")))
	visible(t, c, "math", 1)
	link := activeLinks(c, x.pid())

	// probe opens a TLS connection to x and returns the serial number of
	// the certificate x showed, once x's first frame arrives: a client
	// certificate x refuses fails the read.
	probe := func(files exchange.TLSFiles) (*big.Int, error) {
		_, cfg, err := files.Load()
		if err != nil {
			t.Fatal(err)
		}
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", x.Addr(), cfg)
		if err != nil {
			return nil, err
		}
		defer tc.Close()
		tc.SetDeadline(time.Now().Add(2 * time.Second))
		// x answers a hello (its own needs one first).
		if _, err := tc.Write(connection.AppendHello(nil, connection.Hello{Protocol: connection.Protocol,
			Process: registry.NewProcessID(), Role: registry.RoleClient})); err != nil {
			return nil, err
		}
		if _, err := tc.Read(make([]byte, 1)); err != nil {
			return nil, err
		}
		return tc.ConnectionState().PeerCertificates[0].SerialNumber, nil
	}
	serialOf := func(certFile string) *big.Int {
		b, err := os.ReadFile(certFile)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return cert.SerialNumber
	}
	prober := ca.Endpoint("prober")
	if got, err := probe(prober); err != nil || got.Cmp(serialOf(files.CertFile)) != 0 {
		t.Fatalf("before the renewal x shows serial %v (%v), want %v", got, err, serialOf(files.CertFile))
	}

	t.Run("renewed certificate", func(t *testing.T) {
		ca.Issue("x") // the same files, a new certificate and key
		want := serialOf(files.CertFile)
		nodetest.WaitFor(t, waitLong, func() error {
			if got, err := probe(prober); err != nil || got.Cmp(want) != 0 {
				return fmt.Errorf("x shows serial %v (%v), want the renewed %v", got, err, want)
			}
			return nil
		})
		if now := activeLinks(c, x.pid()); len(now) != 1 || len(link) != 1 || now[0].ID != link[0].ID {
			t.Fatalf("c's links to x went from %+v to %+v; the renewal must not touch them", link, now)
		}
		mustMultiply(t, c, service.Name("math"))
	})

	t.Run("another CA accepted", func(t *testing.T) {
		other := exchangetest.NewCA(t, "other")
		cert, key := other.Issue("stranger")
		stranger := exchange.TLSFiles{CertFile: cert, KeyFile: key, CAFile: ca.File}
		if _, err := probe(stranger); err == nil {
			t.Fatal("x accepted a certificate of a CA it does not know")
		}
		appendFile(t, files.CAFile, other.File)
		nodetest.WaitFor(t, waitLong, func() error {
			if _, err := probe(stranger); err != nil {
				return fmt.Errorf("x still refuses the other CA's certificate: %v", err)
			}
			return nil
		})
	})

	t.Run("server certificate of a new CA", func(t *testing.T) {
		// The CA rotates: c is told of the new one (its CA file gains it),
		// then x gets a certificate the new CA signed. c's next link to x
		// must verify against the CA file as it is now, not as it was
		// when c started.
		next := exchangetest.NewCA(t, "next")
		appendFile(t, ca.File, next.File)
		cert, key := next.Issue("x-next")
		for from, to := range map[string]string{key: files.KeyFile, cert: files.CertFile} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		want := serialOf(files.CertFile)
		nodetest.WaitFor(t, waitLong, func() error {
			if got, err := probe(prober); err != nil || got.Cmp(want) != 0 {
				return fmt.Errorf("x shows serial %v (%v), want the new CA's %v", got, err, want)
			}
			return nil
		})
		x.x("").Forget(c.pid(), "test: dial again")
		x.x("").Alive(c.pid()) // only the link goes: c may link again
		nodetest.WaitFor(t, waitLong, func() error {
			now := activeLinks(c, x.pid())
			if len(now) == 1 && now[0].ID != link[0].ID {
				return nil
			}
			var why []string
			for _, tg := range c.x("").Targets() {
				why = append(why, tg.State+": "+tg.LastErr)
				if tg.State == "rejected" {
					// c looks at its files at most once a second: a dial
					// before that fails to verify x, and the next try
					// waits a growing delay; this one is at once.
					c.x("").Dial(tg.Address)
				}
			}
			return fmt.Errorf("c has not linked to x again (links %+v, targets %v)", now, why)
		})
		visible(t, c, "math", 1) // up is not synced yet
		mustMultiply(t, c, service.Name("math"))
	})
}

// appendFile appends the contents of src to dst (a CA file gaining a CA).
func appendFile(t testing.TB, dst, src string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
