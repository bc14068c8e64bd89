package exchange

// Accepting connections: the listener's loop, the node's bounds on
// connections still in their handshake, admission, and the check of a
// peer's hello.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/registry"
)

// accept hands accepted connections to the actor. A connection past
// the node's bounds on connections still in their handshake (in all, and
// from one host) is refused at once: a stranger holding sockets open
// cannot crowd out the peers (rule 36).
func (x *Exchange) accept() {
	for {
		nc, err := x.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			x.log.Warn("accept failed", "error", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		release, ok := x.cfg.Budget.Handshake(nc.RemoteAddr())
		if !ok {
			lim := x.cfg.Budget.Limits()
			x.refuse(nc, refusedBusy, fmt.Sprintf("too many connections in their handshake (at most %d, %d from one host)",
				lim.Handshaking, lim.HandshakingPerHost))
			continue
		}
		if tc, ok := nc.(*tls.Conn); ok {
			// The handshake, in its own goroutine, before admission, so
			// a refusal reaches the peer over TLS.
			go func() {
				if x.handshakeTLS(tc) {
					x.admit(nc, release)
				} else {
					x.refusals.add(refusedTLS)
					release()
				}
			}()
			continue
		}
		x.admit(nc, release)
	}
}

// refuse turns an accepted connection away with a reason, counted and
// logged (few lines: a stranger decides how often this happens).
func (x *Exchange) refuse(nc net.Conn, why refusal, reason string) {
	x.refusals.add(why)
	x.cfg.Budget.LogStranger(x.log, "connection refused", "remote", nc.RemoteAddr().String(), "reason", reason)
	nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	nc.Write(connection.AppendReason(nil, connection.FrameReject, reason))
	nc.Close()
}

// admit hands an accepted connection to the actor, unless Admit refuses
// it; release gives back its room among the connections in a handshake.
func (x *Exchange) admit(nc net.Conn, release func()) {
	if x.cfg.Admit != nil {
		if err := x.cfg.Admit(nc.RemoteAddr()); err != nil {
			release()
			x.refuse(nc, refusedAdmission, "not admitted: "+err.Error())
			return
		}
	}
	if x.stopped.Load() {
		release()
		nc.Close()
		return
	}
	x.send(&accepted{nc: nc, release: release})
}

// check validates a peer's hello (run by the link's reader, before the
// token is proven either way).
func (x *Exchange) check(h connection.Hello) error {
	switch {
	case h.Group != x.cfg.Group:
		return fmt.Errorf("exchange group mismatch: peer is in group %s, this endpoint serves group %s", groupName(h.Group), groupName(x.cfg.Group))
	case h.Process == x.rt.ProcessID():
		return errors.New("connected to itself")
	case x.cfg.Role == registry.RoleClient && h.Role == registry.RoleClient:
		return errors.New("a client endpoint links only to a server, and the peer is a client")
	case x.dead.has(h.Process):
		return errors.New("the cluster declared this node dead: links resume once gossip sees it alive")
	}
	return nil
}

func (x *Exchange) hello() connection.Hello {
	listen := x.cfg.Advertise
	if listen == "" {
		listen = x.addr
	}
	return connection.Hello{Protocol: connection.Protocol, Process: x.rt.ProcessID(), Node: x.rt.Node(),
		Role: x.cfg.Role, Group: x.cfg.Group, Listen: listen}
}
