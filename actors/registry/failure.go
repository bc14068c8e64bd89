package registry

// Failures: the codes, their text, and the sentinels errors.Is matches.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Code is the stable number of a failure. The runtime's own codes keep the
// numbers OSE netsvc used where OSE had one, so logs and tools carry over;
// applications may use any other number.
type Code int

// The runtime's failure codes (rule 16).
const (
	CodeResponseDecoding Code = 44 // the caller cannot decode the response into its result
	CodeNoSuchService    Code = 46 // nothing of that name or address is visible
	CodeTimedOut         Code = 47 // the caller's deadline passed
	CodeCancelled        Code = 48 // the caller cancelled the request
	CodeResponseEncoding Code = 52 // the handler's result cannot be encoded
	CodeNoSuchMethod     Code = 55 // the service does not export the method
	CodeBadArguments     Code = 56 // wrong argument count or types
	CodeHandlerError     Code = 57 // the handler returned an error or panicked
	CodeResponseAborted  Code = 58 // the service abandoned a delayed response
	CodeWithdrawn        Code = 60 // the service was withdrawn before it replied
	CodeLinkLost         Code = 61 // the link the request went through went down
	CodeOverloaded       Code = 62 // a queue on the way is full
	CodePayloadTooLarge  Code = 63 // the payload is over the configured maximum
	CodeNotAuthorised    Code = 64 // the peer refused the caller
	CodeShutdown         Code = 65 // the runtime or the calling service is stopping
	CodeBadTarget        Code = 66 // the target cannot take a call (the whole registry)
)

var codeText = map[Code]string{
	CodeResponseDecoding: "response decoding error",
	CodeNoSuchService:    "no such service",
	CodeTimedOut:         "timed out",
	CodeCancelled:        "request cancelled",
	CodeResponseEncoding: "response encoding error",
	CodeNoSuchMethod:     "no such method",
	CodeBadArguments:     "bad arguments",
	CodeHandlerError:     "handler error",
	CodeResponseAborted:  "response aborted",
	CodeWithdrawn:        "service withdrawn before reply",
	CodeLinkLost:         "link lost before reply",
	CodeOverloaded:       "overloaded",
	CodePayloadTooLarge:  "payload too large",
	CodeNotAuthorised:    "not authorised",
	CodeShutdown:         "shutting down",
	CodeBadTarget:        "bad target",
}

// String returns the standard description of a runtime code, or the number.
func (c Code) String() string {
	if s, ok := codeText[c]; ok {
		return s
	}
	return "code " + strconv.Itoa(int(c))
}

// OriginRuntime is the origin of failures the runtime itself produces.
const OriginRuntime = "netsvc"

// Failure is the error a request ends with when it gets no response: a
// stable code, a description, who produced it and details for a person.
// Check for it with errors.As, or compare codes with errors.Is against the
// Err... values:
//
//	var f *service.Failure
//	if errors.As(err, &f) && f.Code == service.CodeNoSuchMethod { ... }
//	if errors.Is(err, service.ErrTimedOut) { ... }
type Failure struct {
	Code        Code   `json:"code"`
	Description string `json:"description"`
	Origin      string `json:"origin"`
	Details     string `json:"details,omitempty"`
}

// Error reads like "netsvc: no such service (46): math".
func (f *Failure) Error() string {
	s := f.Origin + ": " + f.Description + " (" + strconv.Itoa(int(f.Code)) + ")"
	if f.Origin == "" {
		s = f.Description + " (" + strconv.Itoa(int(f.Code)) + ")"
	}
	if f.Details != "" {
		s += ": " + f.Details
	}
	return s
}

// Is makes errors.Is(err, ErrTimedOut) true for any failure with that code.
func (f *Failure) Is(target error) bool {
	t, ok := target.(*Failure)
	return ok && t.Code == f.Code && t.Details == "" && (t.Origin == "" || t.Origin == f.Origin)
}

// Sentinels for errors.Is; they match any failure with the same code.
var (
	ErrNoSuchService   = &Failure{Code: CodeNoSuchService}
	ErrNoSuchMethod    = &Failure{Code: CodeNoSuchMethod}
	ErrBadArguments    = &Failure{Code: CodeBadArguments}
	ErrHandlerError    = &Failure{Code: CodeHandlerError}
	ErrWithdrawn       = &Failure{Code: CodeWithdrawn}
	ErrLinkLost        = &Failure{Code: CodeLinkLost}
	ErrTimedOut        = &Failure{Code: CodeTimedOut}
	ErrOverloaded      = &Failure{Code: CodeOverloaded}
	ErrPayloadTooLarge = &Failure{Code: CodePayloadTooLarge}
	ErrNotAuthorised   = &Failure{Code: CodeNotAuthorised}
	ErrCancelled       = &Failure{Code: CodeCancelled}
	ErrShutdown        = &Failure{Code: CodeShutdown}
)

// Fail returns an application failure a handler can return; the origin is
// filled in with the service's name when left empty.
func Fail(code Code, description, details string) *Failure {
	return &Failure{Code: code, Description: description, Details: details}
}

// RuntimeFailure builds a failure of the runtime's own with its standard
// text.
func RuntimeFailure(code Code, details string) *Failure {
	return &Failure{Code: code, Description: code.String(), Origin: OriginRuntime, Details: details}
}

// RuntimeFailuref is RuntimeFailure with the details formatted.
func RuntimeFailuref(code Code, format string, args ...any) *Failure {
	return RuntimeFailure(code, fmt.Sprintf(format, args...))
}

// AsFailure turns any error into a Failure: failures pass through, context
// deadlines become "timed out", anything else a handler error.
func AsFailure(err error) *Failure {
	if err == nil {
		return nil
	}
	if f, ok := err.(*Failure); ok {
		return f
	}
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return RuntimeFailure(CodeTimedOut, err.Error())
	}
	if errors.Is(err, context.Canceled) {
		return RuntimeFailure(CodeCancelled, err.Error())
	}
	return RuntimeFailure(CodeHandlerError, err.Error())
}
