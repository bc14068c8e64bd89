package nodetest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// FreePorts returns n distinct loopback ports free for TCP and UDP now,
// picked below the kernel's ephemeral range where it can tell, so an
// outgoing connection does not take a stopped node's port before it
// is back: for a test that restarts a node at the same address. A port
// is never given twice in one process.
func FreePorts(n int) ([]int, error) {
	lo, hi := 20000, 30000
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if eph, err := strconv.Atoi(f[0]); err == nil && eph > 2048 {
				hi = eph
				lo = max(1024, min(lo, eph-8192))
			}
		}
	}
	var out []int
	for attempt := 0; len(out) < n && attempt < 100*n; attempt++ {
		p := lo + rand.IntN(hi-lo)
		if slices.Contains(out, p) || !portFree(p) {
			continue
		}
		if _, taken := handed.LoadOrStore(p, true); taken {
			continue // given to another caller of this process already
		}
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("found only %d free ports in %d-%d", len(out), lo, hi)
	}
	return out, nil
}

func portFree(p int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// handed holds the ports FreePorts gave out.
var handed sync.Map
