package exchange

// TLS for links: the files, their reloading when they change, and the
// TLS handshake of accepted and dialled connections.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/netsvc-go/netsvc/actors/connection"
)

// TLSFiles names the PEM files of an endpoint's TLS setup; Load turns
// them into Config.ServerTLS and Config.ClientTLS.
//
// A server node sets all three: it serves TLS with CertFile, presents the
// same certificate when it dials peers (so the certificate needs both the
// server and the client extended key usage, or none), and verifies peers
// against CAFile, both ways: with a CA, the listener requires a client
// certificate signed by it (mutual TLS). A client sets CAFile to verify
// its server, and CertFile and KeyFile when the server asks for a client
// certificate.
//
// The dialler verifies the peer's certificate for the host it dials (an
// IP address needs an IP SAN) unless ClientTLS.ServerName is set.
type TLSFiles struct {
	CertFile, KeyFile string // the endpoint's certificate chain and private key
	CAFile            string // the CAs peers' certificates are verified against ("": the system's)
}

// Load reads the files. server is nil without a certificate; client is
// nil when neither a certificate nor a CA is given (plain TCP). Both
// require TLS 1.2 or later.
//
// The certificate and key are read again when they change on disk
// (checked at most once every reloadCheck, at a handshake), and so is
// the CA file for the certificates the listener accepts: a renewed
// certificate takes effect for new links without a restart, and links
// up keep going. Until a changed certificate and its key match (one
// file rewritten, the other not yet), the previous pair stays in use.
// So are the CAs the dialler verifies its servers against, when an
// exchange dials with the client configuration Load returned (a clone
// of it, or one whose RootCAs were replaced, keeps the CAs Load read).
func (f TLSFiles) Load() (server, client *tls.Config, err error) {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, nil, errors.New("TLS: a certificate needs its key and a key its certificate")
	}
	st := &tlsFilesState{files: f, checked: time.Now(), stamps: f.stamps()}
	if st.cert, st.pool, err = f.read(); err != nil {
		return nil, nil, err
	}
	if st.cert != nil {
		server = &tls.Config{MinVersion: tls.VersionTLS12}
		base := server
		server.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := st.current()
			c := base.Clone()
			c.GetConfigForClient = nil
			c.Certificates = []tls.Certificate{*cert}
			if pool != nil {
				c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
			}
			return c, nil
		}
	}
	if st.cert != nil || st.pool != nil {
		client = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: st.pool}
		if st.cert != nil {
			client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				cert, _ := st.current()
				return cert, nil
			}
		}
		if st.pool != nil {
			reloadingClients.add(client, st)
		}
	}
	return server, client, nil
}

// reloadingClients maps the client configurations Load returned to their
// files, so a dial can verify its server against the CA file as it is
// now: crypto/tls reads RootCAs from the configuration and has no hook
// that returns them per handshake (VerifyConnection does not learn the
// address dialled, so it cannot check an IP SAN). The keys are weak: a
// configuration nobody uses any more takes its entry with it.
var reloadingClients clientFiles

type clientFiles struct{ m sync.Map } // weak.Pointer[tls.Config] → clientFilesEntry

type clientFilesEntry struct {
	st    *tlsFilesState
	first *x509.CertPool // the RootCAs Load set
}

func (c *clientFiles) add(cfg *tls.Config, st *tlsFilesState) {
	key := weak.Make(cfg)
	c.m.Store(key, clientFilesEntry{st: st, first: cfg.RootCAs})
	runtime.AddCleanup(cfg, func(key weak.Pointer[tls.Config]) { c.m.Delete(key) }, key)
}

// rootCAs returns the CAs to verify a server against with cfg: those in
// cfg's CA file now, if Load made cfg and its RootCAs are still Load's,
// else cfg's own.
func (c *clientFiles) rootCAs(cfg *tls.Config) *x509.CertPool {
	if v, ok := c.m.Load(weak.Make(cfg)); ok {
		e := v.(clientFilesEntry)
		if cfg.RootCAs != e.first {
			return cfg.RootCAs // set by hand after Load: the user's choice
		}
		if _, pool := e.st.current(); pool != nil {
			return pool
		}
	}
	return cfg.RootCAs
}

// reloadCheck is how often, at most, Load's configurations look at their
// files for changes.
const reloadCheck = time.Second

// tlsFilesState is what TLSFiles hold now, for the configurations Load
// returns.
type tlsFilesState struct {
	files   TLSFiles
	mu      sync.Mutex
	checked time.Time
	stamps  [3]fileStamp // of the certificate, the key and the CA file
	cert    *tls.Certificate
	pool    *x509.CertPool
}

// fileStamp tells whether a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func (f TLSFiles) stamps() (s [3]fileStamp) {
	for i, name := range []string{f.CertFile, f.KeyFile, f.CAFile} {
		if name == "" {
			continue
		}
		if fi, err := os.Stat(name); err == nil {
			s[i] = fileStamp{fi.ModTime(), fi.Size()}
		}
	}
	return s
}

// current returns the certificate and CA pool, read again if the files
// changed since they were last read and now load. They are read
// together: while the certificate and key do not match (one rewritten,
// not yet the other), a changed CA file waits for them too.
func (st *tlsFilesState) current() (*tls.Certificate, *x509.CertPool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if time.Since(st.checked) < reloadCheck {
		return st.cert, st.pool
	}
	st.checked = time.Now()
	stamps := st.files.stamps()
	if stamps == st.stamps {
		return st.cert, st.pool
	}
	cert, pool, err := st.files.read()
	if err != nil {
		return st.cert, st.pool // half rewritten, say: try again at the next check
	}
	st.cert, st.pool, st.stamps = cert, pool, stamps
	return st.cert, st.pool
}

// read loads the certificate (nil without CertFile) and the CA pool (nil
// without CAFile).
func (f TLSFiles) read() (*tls.Certificate, *x509.CertPool, error) {
	var cert *tls.Certificate
	if f.CertFile != "" {
		c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("TLS: cannot load certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
		}
		cert = &c
	}
	var pool *x509.CertPool
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("TLS: cannot read CA file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("TLS: CA file %s holds no PEM certificate", f.CAFile)
		}
	}
	return cert, pool, nil
}

// tlsDial runs the client side of the TLS handshake on a dialled
// connection. permanent is set when retrying cannot help until someone
// changes a certificate or a configuration: the peer's certificate does
// not verify, the peer refused this side's, or the peer does not speak
// TLS at all.
func tlsDial(nc net.Conn, cfg *tls.Config, addr string, timeout time.Duration) (tc *tls.Conn, permanent bool, err error) {
	roots := reloadingClients.rootCAs(cfg)
	if cfg.ServerName == "" || roots != cfg.RootCAs {
		cfg = cfg.Clone()
		cfg.RootCAs = roots
	}
	if cfg.ServerName == "" {
		// As tls.Dial does: verify the certificate for the host dialled.
		host, _, splitErr := net.SplitHostPort(addr)
		if splitErr != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	tc = tls.Client(nc, cfg)
	tc.SetDeadline(time.Now().Add(timeout))
	if err = tc.Handshake(); err != nil {
		nc.Close()
		permanent, reason := tlsFailure(err)
		return nil, permanent, errors.New("TLS handshake failed: " + reason)
	}
	tc.SetDeadline(time.Time{})
	return tc, false, nil
}

// tlsFailure explains a failed handshake and says whether retrying can
// help.
func tlsFailure(err error) (permanent bool, reason string) {
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.As(err, &verify):
		return true, err.Error()
	case errors.As(err, &header):
		return true, "the peer does not speak TLS (" + err.Error() + ")"
	case errors.As(err, &op) && op.Op == "remote error":
		// A TLS alert from the peer: it refused this side's certificate,
		// version or ciphers.
		return true, err.Error()
	case errors.Is(err, io.EOF):
		return false, "the peer closed the connection during the handshake"
	}
	return false, err.Error()
}

// handshakeTLS runs the server side of the TLS handshake of an accepted
// connection, bounded by the link's handshake timeout, and logs a
// failure with the peer's address. A peer that does not speak TLS at all
// (a netsvc endpoint without TLS) is sent a reject frame in the clear,
// so it learns why; after a failed handshake the connection is closed
// gracefully, so the peer reads the TLS alert rather than a reset.
func (x *Exchange) handshakeTLS(tc *tls.Conn) bool {
	timeout := x.cfg.Link.HandshakeTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	tc.SetDeadline(time.Now().Add(timeout))
	err := tc.Handshake()
	if err == nil {
		tc.SetDeadline(time.Time{})
		return true
	}
	raw := tc.NetConn()
	_, reason := tlsFailure(err)
	var header tls.RecordHeaderError
	if errors.As(err, &header) && header.Conn != nil {
		raw.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		raw.Write(connection.AppendReason(nil, connection.FrameReject, "TLS required: this endpoint accepts TLS connections only"))
	}
	if errors.Is(err, io.EOF) {
		// Connected and went: a port probe, as a plain link logs it.
		x.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "reason", reason)
	} else {
		x.cfg.Budget.LogStranger(x.log, "TLS handshake failed", "remote", raw.RemoteAddr().String(), "reason", reason)
	}
	lingeringClose(raw)
	return false
}

// lingeringClose closes nc after what was written reached the peer: it
// half-closes, then reads (briefly) until the peer closes too. Closing
// with unread input would reset the connection, and the peer might lose
// the last frame or alert sent.
func lingeringClose(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(tc, 1<<20))
	}
	nc.Close()
}
