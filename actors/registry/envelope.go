package registry

// Kind says what an Envelope carries.
type Kind uint8

// Envelope kinds.
const (
	KindRequest     Kind = 1 // Subject is the method; Data the arguments
	KindResponse    Kind = 2 // Data is the result
	KindFailure     Kind = 3 // Data is the CBOR-encoded Failure
	KindReport      Kind = 4 // Subject is the report subject; Pattern the subscription pattern it matched
	KindSubscribe   Kind = 5 // Subject is the subject pattern
	KindUnsubscribe Kind = 6 // Subject is the subject pattern
	KindMessage     Kind = 7 // one-way message: Subject is the message id, Pattern the description
	KindCancel      Kind = 8 // the caller gave up on request Conv it sent to To
)

var kindNames = [...]string{"?", "request", "response", "failure", "report", "subscribe", "unsubscribe", "message", "cancel"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k >= KindRequest && k <= KindCancel }

// Envelope is one message between services: what the registry routes and
// what links carry between processes. Services never see envelopes; the
// type is exported for the exchange (package actors) that puts them on the
// wire.
type Envelope struct {
	Kind        Kind
	To          Address
	From        Address
	Conv        uint64 // conversation id, unique in the sending process
	Subject     string // method, subject, pattern or message id (see Kind)
	Pattern     string // the matched pattern of a report; a message's description
	Seq         uint64 // a one-way message's sequence number
	ContentType string
	Data        []byte
	// Deadline is when the caller of a request gives up, in Unix
	// nanoseconds of this process's clock (0: no deadline). Between
	// processes it travels as the time left, counted again from receipt,
	// so clocks need not agree.
	Deadline int64
	// NotRun marks a failure answering a request that provably never
	// reached a handler: the caller may try it elsewhere.
	NotRun bool
	// Headers travel with the envelope unchanged (trace context and the
	// like); the runtime itself sets none yet.
	Headers []Header
	// Via is the link a request arrived on (never sent): its answer goes
	// back the same way, the way its caller keeps while it waits, even
	// while the caller moves to another server and the others have not
	// heard of its new way yet.
	Via Link
}

// Header is one key and value of Envelope.Headers.
type Header struct {
	Key, Value string
}

// Size is an estimate of the envelope's encoded size, for limits.
func (e *Envelope) Size() int {
	n := 64 + len(e.Subject) + len(e.Pattern) + len(e.ContentType) + len(e.Data)
	for _, h := range e.Headers {
		n += 2 + len(h.Key) + len(h.Value)
	}
	return n
}
