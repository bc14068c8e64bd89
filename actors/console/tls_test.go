package console

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange/exchangetest"
	"github.com/netsvc-go/netsvc/service"
)

// consoleCert returns a certificate for 127.0.0.1 from a throwaway CA,
// and a pool trusting that CA.
func consoleCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca := exchangetest.NewCA(t, "ca")
	cert, err := tls.LoadX509KeyPair(ca.Issue("console"))
	if err != nil {
		t.Fatal(err)
	}
	return cert, ca.Pool()
}

// TestConsoleTLS: with Config.TLS the console serves HTTPS, and plain
// HTTP gets nothing of it.
func TestConsoleTLS(t *testing.T) {
	n := startSingle(t, service.Config{})
	cert, pool := consoleCert(t)
	c := startConsole(t, Config{Node: n, Token: "tok", TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if !strings.HasPrefix(c.URL(), "https://") {
		t.Fatalf("URL %s", c.URL())
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodGet, c.URL()+"api/node", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("over TLS: %d %v", resp.StatusCode, resp.TLS)
	}
	plain, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + c.Addr() + "/api/node")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200")
		}
	}
}
