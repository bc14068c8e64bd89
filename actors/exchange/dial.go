package exchange

// Dialling: the peers an exchange keeps linked (targets), a client's
// fallback servers, and when to try again (rule 11).

import (
	"crypto/tls"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/registry"
)

type target struct {
	addr string
	// fallbacks, for a client, are the servers it may link to, addr
	// among them: it links to one at a time and moves to the next when
	// that one cannot be reached or refuses it.
	fallbacks []string
	refusals  int // fallbacks that refused in a row
	conn      *connection.Conn
	dialling  bool
	timer     *time.Timer
	attempts  int
	lastErr   string
	// rejected is set while the peer refuses this endpoint (token, group,
	// version, TLS); backoff is then the delay before the next try,
	// doubling up to maxBackoff and reset once a link is up (rule 11).
	rejected bool
	backoff  time.Duration
	// redialNow asks for a dial as soon as the link the target has now
	// closes, without the retry delay: gossip saw the peer alive again.
	redialNow bool
	waitFor   registry.ProcessID // linked to this process over another link (duplicate rule)
	wanted    bool
	once      bool // one attempt only (DialOnce): dropped instead of retried
	// wasUp is set while the target's link is up: when the peer closes
	// it, the first redial is at once (after a blip a peer may have
	// closed it on a false death while this side heard nothing), later
	// ones after the retry delay.
	wasUp bool
	// moveFrom is the link to a draining server this client is moving
	// away from: closed once the target's new link is synced and no call
	// waits on the old one (since moveSince).
	moveFrom  *connection.Conn
	moveSince time.Time
}

// maxBackoff caps the delay between tries of a peer that refuses this
// endpoint: fixing the peer's configuration heals it within a minute.
const maxBackoff = time.Minute

func (a *exchangeActor) dialTarget(addr string) {
	t := a.targets[addr]
	if t == nil {
		t = &target{addr: addr}
		a.targets[addr] = t
	}
	t.wanted = true
	switch {
	case t.conn != nil:
		// Up, or closing (a peer declared dead, now alive again): once
		// this one is gone, dial at once rather than after the delay.
		t.redialNow = true
	case !t.dialling:
		a.dial(t)
	}
}

func (a *exchangeActor) dial(t *target) {
	if a.stopping {
		return
	}
	a.relinking()
	t.dialling = true
	t.attempts++
	root, self, x := a.ctx.ActorSystem().Root, a.ctx.Self(), a.x
	timeout := min(x.cfg.Retry, 5*time.Second)
	go func() {
		d := net.Dialer{Timeout: timeout}
		nc, err := d.Dial("tcp", t.addr)
		permanent := false
		if err == nil && x.cfg.ClientTLS != nil {
			var tc *tls.Conn
			if tc, permanent, err = tlsDial(nc, x.cfg.ClientTLS, t.addr, timeout); err == nil {
				nc = tc
			}
		}
		root.Send(self, &dialResult{t: t, nc: nc, err: err, permanent: permanent})
	}()
}

func (a *exchangeActor) dialed(m *dialResult) {
	t := m.t
	t.dialling = false
	if m.err != nil && m.permanent && a.nextFallback(t) {
		a.x.log.Error("cannot link to server; trying the next", "server", t.addr, "reason", m.err)
		t.lastErr = m.err.Error()
		a.dial(t)
		return
	}
	if m.err != nil && m.permanent {
		t.lastErr = m.err.Error()
		a.refused(t, m.err.Error())
		a.notify(LinkEvent{Refused: true, Link: registry.LinkInfo{ExchangeGroup: a.x.cfg.Group, LocalRole: a.x.cfg.Role, PeerAddress: t.addr}, Reason: m.err.Error()})
		return
	}
	if m.err != nil {
		if t.lastErr != m.err.Error() {
			a.x.log.Info("cannot reach peer; will retry", "peer", t.addr, "retry", a.x.cfg.Retry, "error", m.err)
		}
		t.lastErr = m.err.Error()
		if len(t.fallbacks) > 1 {
			t.refusals = 0
			a.rotate(t)
		}
		a.retryLater(t)
		return
	}
	if !t.wanted || a.stopping {
		m.nc.Close()
		return
	}
	a.spawn(m.nc, t, nil)
}

// rotate moves a client's target to its next server.
func (a *exchangeActor) rotate(t *target) {
	i := slices.Index(t.fallbacks, t.addr)
	next := t.fallbacks[(i+1)%len(t.fallbacks)]
	delete(a.targets, t.addr)
	t.addr = next
	a.targets[t.addr] = t
}

// nextFallback moves a client refused by one server to the next, and
// reports false once every server has refused it in a row.
func (a *exchangeActor) nextFallback(t *target) bool {
	if len(t.fallbacks) < 2 {
		return false
	}
	t.refusals++
	if t.refusals >= len(t.fallbacks) {
		return false
	}
	a.rotate(t)
	return true
}

// refused records that the peer refused this endpoint: retrying cannot
// help until someone changes a configuration, so the delay doubles, from
// the retry delay up to maxBackoff (rule 11).
func (a *exchangeActor) refused(t *target, reason string) {
	t.rejected = true
	t.backoff = min(max(2*t.backoff, a.x.cfg.Retry), maxBackoff)
	a.x.log.Error("peer refused this node; retrying later", "peer", t.addr, "retry", t.backoff, "reason", reason)
	a.retryLater(t)
}

// retryLater dials t again after the retry delay ±20 % (a refused
// target after its backoff), so peers that lost a server together do not
// all dial at the same moment.
func (a *exchangeActor) retryLater(t *target) {
	if t.once && t.conn == nil && !t.dialling {
		t.wanted = false
		if a.targets[t.addr] == t {
			delete(a.targets, t.addr)
		}
		return
	}
	if !t.wanted || a.stopping {
		return
	}
	delay := jitter(a.x.cfg.Retry)
	if t.rejected {
		delay = jitter(t.backoff)
	}
	root, self := a.ctx.ActorSystem().Root, a.ctx.Self()
	if t.timer != nil {
		t.timer.Stop()
	}
	t.timer = time.AfterFunc(delay, func() { root.Send(self, &retryTick{t: t}) })
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
