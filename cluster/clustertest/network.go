// Package clustertest cuts the gossip of a test's cluster: members on
// either side of the cut drop each other's packets without a word and
// their connections never open, as when a link between two switches
// goes down. Give each member's cluster.Config the network's Wrap as
// WrapTransport, bind it to 127.0.0.1, then Cut and Heal.
package clustertest

import (
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Network is the loopback network of a test, which the test can cut:
// members on different sides then drop each other's packets without a
// word, and their connections to each other never open (the dial waits
// its whole timeout), as when a link between two switches goes down. The
// members run memberlist's own transport underneath; only what crosses
// the cut is held back.
type Network struct {
	mu    sync.Mutex
	side  map[string]int // gossip address → side of the cut; absent is side 0
	dials map[string]int // stream dials by destination address
}

// NewNetwork returns a network with no cut.
func NewNetwork() *Network {
	return &Network{side: map[string]int{}, dials: map[string]int{}}
}

// blocked reports whether traffic from one address to another is dropped.
func (pn *Network) blocked(from, to string) bool {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	return pn.side[from] != pn.side[to]
}

// Cut puts each group of gossip addresses on a side of its own (the
// first group on side 1, and so on); addresses in no group stay on side 0.
func (pn *Network) Cut(groups ...[]string) {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	clear(pn.side)
	for i, g := range groups {
		for _, addr := range g {
			pn.side[addr] = i + 1
		}
	}
}

// Heal puts every member back on one network.
func (pn *Network) Heal() {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	clear(pn.side)
}

// Dials returns how many streams were dialled to addr so far.
func (pn *Network) Dials(addr string) int {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	return pn.dials[addr]
}

// Wrap puts a member's transport (bound to 127.0.0.1) on this network;
// it is a cluster.Config.WrapTransport.
func (pn *Network) Wrap(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	port := inner.(*memberlist.NetTransport).GetAutoBindPort()
	t := &cutTransport{NodeAwareTransport: inner, net: pn, self: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		packets: make(chan *memberlist.Packet), done: make(chan struct{})}
	go t.filter()
	return t
}

// cutTransport is memberlist's transport of one member of a Network.
type cutTransport struct {
	memberlist.NodeAwareTransport
	net     *Network
	self    string // this member's gossip address
	packets chan *memberlist.Packet
	done    chan struct{}
	once    sync.Once
}

// filter passes on the packets that do not cross the cut.
func (t *cutTransport) filter() {
	in := t.NodeAwareTransport.PacketCh()
	for {
		select {
		case <-t.done:
			return
		case p := <-in:
			if t.net.blocked(p.From.String(), t.self) {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		}
	}
}

func (t *cutTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.net.blocked(t.self, a.Addr) {
		return time.Now(), nil // sent, as far as the sender can tell
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *cutTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	t.net.mu.Lock()
	t.net.dials[a.Addr]++
	t.net.mu.Unlock()
	if t.net.blocked(t.self, a.Addr) {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-t.done:
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	}
	return t.NodeAwareTransport.DialAddressTimeout(a, timeout)
}

// Shutdown shuts the transport underneath down first: it waits for its
// listeners, which may be handing a packet to filter, which must still
// take it.
func (t *cutTransport) Shutdown() error {
	err := t.NodeAwareTransport.Shutdown()
	t.once.Do(func() { close(t.done) })
	return err
}
