package service_test

import (
	"encoding/json"
	"testing"

	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// A zero process id (a link still in its handshake, in the console's
// /api/connections) reads back as it was written.
func TestZeroProcessIDRoundTrip(t *testing.T) {
	b, err := json.Marshal(struct{ P service.ProcessID }{0})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ P service.ProcessID }
	back.P = 7
	if err := json.Unmarshal(b, &back); err != nil || back.P != 0 {
		t.Fatalf("%s read back as %v, %v", b, back.P, err)
	}
	if _, err := registry.ParseProcessID(service.ProcessID(0).String()); err == nil {
		t.Error("ParseProcessID accepted zero")
	}
}
