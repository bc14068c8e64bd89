package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// The HTTP gateway: POST /rpc/SERVICE/METHOD with a JSON array of
// arguments calls the method of the service of that name (the best of
// its bindings whose audience is not "", rules 13 and 38) and
// answers 200 with the result as JSON. A failure answers
// with the status HTTPStatus gives its code and the failure as JSON:
//
//	{"code": 46, "description": "no such service", "origin": "netsvc",
//	 "details": "no service named \"nope\"", "error": "...", "status": 404}
//
// The call's timeout is the query parameter timeout (a Go duration such
// as 500ms or 2s; DefaultCallTimeout when absent, at most MaxCallTimeout).

// Gateway timeouts.
const (
	DefaultCallTimeout = 10 * time.Second
	MaxCallTimeout     = 5 * time.Minute
)

// OriginConsole is the origin of failures the gateway produces itself
// (a body that is not a JSON array, a bad timeout).
const OriginConsole = "netsvc-console"

// FailureBody is the JSON of a failed gateway call.
type FailureBody struct {
	Code        service.Code `json:"code"`
	Description string       `json:"description"`
	Origin      string       `json:"origin"`
	Details     string       `json:"details"`
	Error       string       `json:"error"`
	Status      int          `json:"status"`
}

// HTTPStatus is the HTTP status the gateway answers a failure code with.
func HTTPStatus(code service.Code) int {
	switch code {
	case service.CodeNoSuchService, service.CodeNoSuchMethod:
		return http.StatusNotFound
	case service.CodeBadArguments:
		return http.StatusBadRequest
	case service.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case service.CodeTimedOut:
		return http.StatusGatewayTimeout
	case service.CodeOverloaded, service.CodeWithdrawn, service.CodeLinkLost, service.CodeShutdown, service.CodeCancelled:
		return http.StatusServiceUnavailable
	case service.CodeNotAuthorised:
		return http.StatusForbidden
	case service.CodeResponseDecoding, service.CodeResponseAborted:
		return http.StatusBadGateway
	}
	// Handler errors, response encoding and application codes.
	return http.StatusInternalServerError
}

// gateway serves /rpc/SERVICE/METHOD.
func (c *Console) gateway(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/rpc/")
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s: want POST /rpc/SERVICE/METHOD with a JSON array of arguments", r.URL.Path))
		return
	}
	name, err1 := pathUnescape(rest[:i])
	method, err2 := pathUnescape(rest[i+1:])
	if err := errors.Join(err1, err2); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: %v", r.URL.Path, err))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed,
			fmt.Sprintf("%s %s: method not allowed: POST a JSON array of arguments, such as [6, 7]", r.Method, r.URL.Path))
		return
	}
	rt := c.cfg.Node.Runtime()
	timeout := DefaultCallTimeout
	if s := r.URL.Query().Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > MaxCallTimeout {
			c.reject(w, rejectBadArguments, &service.Failure{Code: service.CodeBadArguments, Origin: OriginConsole,
				Details: fmt.Sprintf("timeout %q: want a duration such as 500ms or 2s, at most %v", s, MaxCallTimeout)})
			return
		}
		timeout = d
	}
	limit := c.maxBody()
	tooLarge := &service.Failure{Code: service.CodePayloadTooLarge, Origin: OriginConsole,
		Details: fmt.Sprintf("the body is over the limit of %d bytes", limit)}
	if r.ContentLength > limit {
		c.reject(w, rejectTooLarge, tooLarge)
		return
	}
	// A call holds its body's CBOR, and its result, until it ends: bound
	// how many run at once, and answer the rest at once rather than
	// queueing them (a queue grows without bound under load).
	select {
	case c.inFlight <- struct{}{}:
		defer func() { <-c.inFlight }()
	default:
		w.Header().Set("Retry-After", "1")
		c.reject(w, rejectBusy, &service.Failure{Code: service.CodeOverloaded, Origin: OriginConsole,
			Details: fmt.Sprintf("the gateway is busy with %d calls: try again shortly", cap(c.inFlight))})
		return
	}
	to, f := c.resolve(name)
	if f != nil {
		c.reject(w, rejectLocalOnly, f)
		return
	}
	args, err := transcodeArgs(http.MaxBytesReader(w, r.Body, limit), rt.Kernel().MaxPayload())
	if err != nil {
		var tooBig *http.MaxBytesError
		var bad *argsError
		switch {
		case errors.As(err, &tooBig):
			c.reject(w, rejectTooLarge, tooLarge)
		case errors.As(err, &bad) && bad.tooLarge:
			c.reject(w, rejectTooLarge, &service.Failure{Code: service.CodePayloadTooLarge, Origin: OriginConsole,
				Details: fmt.Sprintf("the arguments are over the payload limit of %d bytes", rt.Kernel().MaxPayload())})
		case errors.As(err, &bad):
			c.reject(w, rejectBadArguments, &service.Failure{Code: service.CodeBadArguments, Origin: OriginConsole,
				Details: "the body: " + err.Error()})
		default:
			writeError(w, http.StatusBadRequest, "cannot read the body: "+err.Error())
		}
		return
	}
	// The answer may take the whole timeout: keep the connection writable.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + writeTimeout))
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := rt.Call(ctx, to, method, service.Raw{ContentType: service.ContentCBOR, Data: args})
	args = nil // the service has it now; let it go before the answer is written
	if err != nil {
		f := service.AsFailure(err)
		if f.Code == service.CodeTimedOut && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cp := *f
			cp.Details = fmt.Sprintf("no answer from %s within %v", name, timeout)
			f = &cp
		}
		c.fail(w, f)
		return
	}
	c.writeResult(w, res)
}

// maxBody is the gateway's body limit.
func (c *Console) maxBody() int64 {
	if c.cfg.GatewayMaxBody > 0 {
		return c.cfg.GatewayMaxBody
	}
	return int64(c.cfg.Node.Runtime().Kernel().MaxPayload())
}

// resolve picks what a call to the service name goes to. Services of
// audience "" are visible in their own process only (rule 38);
// the gateway is in that process, but it speaks for whoever reaches it
// over HTTP, so it passes them over unless Config.GatewayCallsLocalOnly
// says otherwise. A name it finds nothing for goes to the runtime as it
// is, which says why it fails.
func (c *Console) resolve(name string) (service.Target, *service.Failure) {
	bindings := c.cfg.Node.Runtime().Lookup(name)
	if len(bindings) == 0 {
		return service.Name(name), nil
	}
	for _, b := range bindings { // best first
		if b.Audience != "" || c.cfg.GatewayCallsLocalOnly {
			return b.Address, nil
		}
	}
	c.log.Debug("gateway: a service of audience \"\" is not called over HTTP", "service", name)
	// The same answer as for a name nobody has: no hint that it exists.
	return nil, &service.Failure{Code: service.CodeNoSuchService, Origin: service.OriginRuntime,
		Details: fmt.Sprintf("no service named %q", name)}
}

// writeResult answers 200 with a call's result as JSON. A CBOR result
// is written straight from its bytes (see writeResultJSON): a small one
// through a buffer, a large one checked first, then streamed, so that
// neither costs generic values nor is sent half before an error.
func (c *Console) writeResult(w http.ResponseWriter, res service.Payload) {
	var small []byte
	var err error
	switch {
	case res.ContentType != service.ContentCBOR && res.ContentType != "":
		small, err = registry.PayloadJSON(res)
	case len(res.Data) <= smallResult:
		var buf bytes.Buffer
		_, err = writeResultJSON(&buf, res.Data)
		small = buf.Bytes()
	default:
		_, err = writeResultJSON(io.Discard, res.Data)
	}
	if err != nil {
		c.fail(w, &service.Failure{Code: service.CodeResponseDecoding, Origin: OriginConsole,
			Details: "cannot turn the result into JSON: " + err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if small != nil {
		w.Write(small)
	} else if _, err := writeResultJSON(w, res.Data); err != nil {
		c.log.Debug("gateway: writing a result failed", "error", err)
		return
	}
	io.WriteString(w, "\n")
}

// Why the gateway refused a request itself: the values of the label
// reason of netsvc_gateway_rejected_total.
type rejectReason int

const (
	rejectBusy         rejectReason = iota // GatewayMaxInFlight calls were running
	rejectTooLarge                         // the body or its arguments were over their limits
	rejectBadArguments                     // the body or the timeout were not what the gateway takes
	rejectLocalOnly                        // the service's audience is ""
	numRejectReasons
)

var rejectReasons = [numRejectReasons]string{"busy", "too_large", "bad_arguments", "local_only"}

// reject counts a request the gateway refuses itself and answers it.
func (c *Console) reject(w http.ResponseWriter, why rejectReason, f *service.Failure) {
	c.rejected[why].Add(1)
	if f.Description == "" {
		f.Description = f.Code.String()
	}
	c.fail(w, f)
}

// fail answers a failed call.
func (c *Console) fail(w http.ResponseWriter, f *service.Failure) {
	status := HTTPStatus(f.Code)
	desc := f.Description
	if desc == "" {
		desc = f.Code.String()
	}
	c.log.Debug("gateway call failed", "code", int(f.Code), "error", f.Error())
	writeJSON(w, status, FailureBody{Code: f.Code, Description: desc, Origin: f.Origin, Details: f.Details, Error: f.Error(), Status: status})
}

func pathUnescape(s string) (string, error) {
	v, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("bad escape in %q", s)
	}
	return v, nil
}
