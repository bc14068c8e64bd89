package service

import (
	"github.com/netsvc-go/netsvc/actors/registry"
)

// The values a service author passes and gets back. They are defined
// with the kernel (package actors/registry), which routes them between
// processes; these are the same types under the names a service uses.

// Address is the unique address of one service: its process and a
// random service id. String gives "process/id"; ParseAddress reads it.
type Address = registry.Address

// ProcessID identifies one running process, random per start.
type ProcessID = registry.ProcessID

// ParseAddress reads the form Address.String writes.
func ParseAddress(s string) (Address, error) { return registry.ParseAddress(s) }

// Target names whom to call, subscribe to or watch: a Name, an Address,
// a Group, or AllServices.
type Target = registry.Target

// Name targets every service of that name; a call picks one: local
// services first, then those fewest links away.
type Name = registry.Name

// Group targets the members of a service group.
type Group = registry.Group

// AllServices targets the whole registry (for watches).
var AllServices = registry.AllServices

// Binding is what a process knows of a service: name, address, audience,
// groups, whether it is local, its node and how many links away it is.
type Binding = registry.Binding

// RegistryEvent tells a watcher of a change: a binding Available or
// Withdrawn, or joining or leaving a Group.
type RegistryEvent = registry.RegistryEvent

// EventKind says what a RegistryEvent tells.
type EventKind = registry.EventKind

// Registry event kinds.
const (
	Available = registry.Available // a service became visible
	Withdrawn = registry.Withdrawn // a service stopped being visible
	Joined    = registry.Joined    // a service joined a service group
	Left      = registry.Left      // a service left a service group
)

// Payload is an encoded value with its content type: a call's result, a
// report's value. Decode reads it into a Go value.
type Payload = registry.Payload

// Raw is a payload the codec passes through unencoded: pass it as the
// only argument, return it from a handler or publish it to move bytes
// with a content type of your own.
type Raw = registry.Raw

// Content types of payloads.
const (
	ContentCBOR = registry.ContentCBOR // the default: values encoded by the codec
	ContentJSON = registry.ContentJSON // used at HTTP edges
	ContentRaw  = registry.ContentRaw  // bytes passed through untouched
)

// Encode encodes a value as a payload: a Raw passes through, anything
// else is CBOR.
func Encode(v any) (Payload, error) { return registry.Encode(v) }

// Failure is the error a request ends with when it gets no response: a
// stable Code, a description, who produced it and details for a person.
// Check for it with errors.As, or compare codes with errors.Is against
// the Err... values.
type Failure = registry.Failure

// Code is the stable number of a failure; the runtime's own are listed
// below, applications may use any other number.
type Code = registry.Code

// The runtime's failure codes (see the package documentation).
const (
	CodeResponseDecoding = registry.CodeResponseDecoding // the caller cannot decode the response into its result
	CodeNoSuchService    = registry.CodeNoSuchService    // nothing of that name or address is visible
	CodeTimedOut         = registry.CodeTimedOut         // the caller's deadline passed
	CodeCancelled        = registry.CodeCancelled        // the caller cancelled the request
	CodeResponseEncoding = registry.CodeResponseEncoding // the handler's result cannot be encoded
	CodeNoSuchMethod     = registry.CodeNoSuchMethod     // the service does not export the method
	CodeBadArguments     = registry.CodeBadArguments     // wrong argument count or types
	CodeHandlerError     = registry.CodeHandlerError     // the handler returned an error or panicked
	CodeResponseAborted  = registry.CodeResponseAborted  // the service abandoned a delayed response
	CodeWithdrawn        = registry.CodeWithdrawn        // the service was withdrawn before it replied
	CodeLinkLost         = registry.CodeLinkLost         // the link the request went through went down
	CodeOverloaded       = registry.CodeOverloaded       // a queue on the way is full
	CodePayloadTooLarge  = registry.CodePayloadTooLarge  // the payload is over the configured maximum
	CodeNotAuthorised    = registry.CodeNotAuthorised    // the peer refused the caller
	CodeShutdown         = registry.CodeShutdown         // the runtime or the calling service is stopping
	CodeBadTarget        = registry.CodeBadTarget        // the target cannot take a call (the whole registry)
)

// Sentinels for errors.Is; each matches any failure with its code.
var (
	ErrNoSuchService   = registry.ErrNoSuchService
	ErrNoSuchMethod    = registry.ErrNoSuchMethod
	ErrBadArguments    = registry.ErrBadArguments
	ErrHandlerError    = registry.ErrHandlerError
	ErrWithdrawn       = registry.ErrWithdrawn
	ErrLinkLost        = registry.ErrLinkLost
	ErrTimedOut        = registry.ErrTimedOut
	ErrOverloaded      = registry.ErrOverloaded
	ErrPayloadTooLarge = registry.ErrPayloadTooLarge
	ErrNotAuthorised   = registry.ErrNotAuthorised
	ErrCancelled       = registry.ErrCancelled
	ErrShutdown        = registry.ErrShutdown
)

// OriginRuntime is the origin of the failures the runtime itself makes.
const OriginRuntime = registry.OriginRuntime

// AsFailure turns any error into a Failure: failures pass through,
// context deadlines become CodeTimedOut, anything else CodeHandlerError.
func AsFailure(err error) *Failure { return registry.AsFailure(err) }

// Fail returns an application failure a handler can return; its origin
// is the service's name when left empty.
func Fail(code Code, description, details string) *Failure {
	return registry.Fail(code, description, details)
}

// Config configures a Runtime: the node's name, a logger, the call
// timeout, the payload limit and the bounds of a process's services.
// The zero value works; see the fields' documentation in
// registry.Config.
type Config = registry.Config
