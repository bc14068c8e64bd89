package service

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
)

var kindNames = [...]string{"?", "request", "response", "failure", "report", "subscribe", "unsubscribe", "message"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k >= KindRequest && k <= KindMessage }

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
}

// Size is an estimate of the envelope's encoded size, for limits.
func (e *Envelope) Size() int {
	return 48 + len(e.Subject) + len(e.Pattern) + len(e.ContentType) + len(e.Data)
}
