package service

// One-way messages between services (rule 32).

import (
	"fmt"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// Message is a one-way message between services (rule 32): no
// answer, no subscription, just delivered to the handler the receiver
// registered for its sender and id.
type Message struct {
	From        Address
	ID          string
	Description string
	Sequence    uint64
	Payload
}

type messageHandler struct {
	from Target // a Name, an Address, or AllServices
	id   string
	fn   func(Message)
}

// SendMessage sends a one-way message to a service. content is encoded
// like any value; pass a Raw to send bytes with a content type of your
// own.
func (a *Agent) SendMessage(to Target, id, description string, content any, seq uint64) error {
	dest, f := a.k.Resolve(to)
	if f != nil {
		return f
	}
	p, err := Encode(content)
	if err != nil {
		return fmt.Errorf("send message %s: %w", id, err)
	}
	if len(p.Data) > a.cfg.MaxPayload {
		return registry.RuntimeFailuref(CodePayloadTooLarge, "message %s is %d bytes, the limit is %d", id, len(p.Data), a.cfg.MaxPayload)
	}
	a.k.Route(&registry.Envelope{Kind: registry.KindMessage, To: dest, From: a.ref.Addr(), Conv: a.k.NextConv(),
		Subject: id, Pattern: description, Seq: seq, ContentType: p.ContentType, Data: p.Data})
	return nil
}

// HandleMessages runs fn for one-way messages with this id from the
// services from names (a Name, an Address, or AllServices). An empty id
// matches every id. Every matching handler gets the message, in the
// order they were registered; messages nobody handles are dropped.
func (a *Agent) HandleMessages(from Target, id string, fn func(Message)) *Handler {
	return a.msgs.add(&messageHandler{from: from, id: id, fn: fn})
}

func (a *Agent) receiveMessage(e *registry.Envelope) {
	m := Message{From: e.From, ID: e.Subject, Description: e.Pattern, Sequence: e.Seq,
		Payload: Payload{ContentType: e.ContentType, Data: e.Data}}
	var senderName string
	handled := false
	for _, h := range a.msgs.list {
		if h.id != "" && h.id != m.ID {
			continue
		}
		switch f := h.from.(type) {
		case Address:
			if f != m.From {
				continue
			}
		case Name:
			if senderName == "" {
				if b, ok := a.rt.LookupAddress(m.From); ok {
					senderName = b.Name
				}
			}
			if string(f) != senderName {
				continue
			}
		}
		fn := h.fn
		a.guard("message handler", func() { fn(m) })
		handled = true
	}
	if handled {
		return
	}
	a.log.Debug("dropping unexpected message", "from", m.From, "id", m.ID)
}
