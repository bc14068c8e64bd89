package service

// Registering a callback reads the same everywhere on an Agent: it adds
// the callback, every callback that matches runs (in the order they were
// registered, inside the service), and the handle returned removes it
// with Cancel: Watch, Subscribe, OnSubscription, HandleMessages,
// AcceptReports.

// Handler is a callback a service registered; Cancel removes it.
type Handler struct {
	cancel func()
}

// Cancel removes the callback: it runs no more. Calling it again does
// nothing.
func (h *Handler) Cancel() {
	if h != nil && h.cancel != nil {
		h.cancel()
		h.cancel = nil
	}
}

// handlers is a list of callbacks a Handler can remove one of.
type handlers[T any] struct {
	list []*T
}

// add appends h and returns the Handler that removes it.
func (l *handlers[T]) add(h *T) *Handler {
	l.list = append(l.list, h)
	return &Handler{cancel: func() {
		for i, x := range l.list {
			if x == h {
				// A fresh slice: a loop running the callbacks keeps the
				// one it started with.
				l.list = append(l.list[:i:i], l.list[i+1:]...)
				return
			}
		}
	}}
}
