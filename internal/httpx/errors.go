package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// RedirectError reports a 3xx answer. azcred never follows redirects: a token
// request carries a secret and must not be re-sent to another host.
type RedirectError struct {
	// Method and URL name the request; URL has no query string.
	Method, URL string
	// StatusCode is the 3xx status.
	StatusCode int
	// LocationHost is the host of the Location header ("" when absent or
	// relative); its path and query are left out.
	LocationHost string
}

// Error implements error.
func (e *RedirectError) Error() string {
	to := "no Location header"
	if e.LocationHost != "" {
		to = fmt.Sprintf("redirect to host %q", e.LocationHost)
	}
	return fmt.Sprintf("%s %s answered %d %s (%s); azcred does not follow redirects: configure the final address instead",
		e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode), to)
}

// RetryAfterTooLongError reports that the server asked (with Retry-After,
// retry-after-ms or x-ms-retry-after-ms) to wait longer than the policy's
// MaxRetryDelay, so the pipeline stopped instead of waiting.
type RetryAfterTooLongError struct {
	// Method and URL name the request; URL has no query string.
	Method, URL string
	// Wait is what the server asked for; Limit is the policy's MaxRetryDelay.
	Wait, Limit time.Duration
	// Tries is the number of tries made.
	Tries int
	// Response is the answer that asked to wait.
	Response *Response
}

// Error implements error.
func (e *RetryAfterTooLongError) Error() string {
	return fmt.Sprintf("%s %s answered %d %s and asked to wait %s before retrying, longer than RetryOptions.MaxRetryDelay (%s); gave up after %d %s: try again later, or raise RetryOptions.MaxRetryDelay",
		e.Method, e.URL, e.Response.StatusCode, http.StatusText(e.Response.StatusCode), e.Wait, e.Limit, e.Tries, plural(e.Tries, "try", "tries"))
}

// BodyTooLargeError reports a response body larger than the request's limit.
type BodyTooLargeError struct {
	// Method and URL name the request; URL has no query string.
	Method, URL string
	// StatusCode is the response's status.
	StatusCode int
	// Limit is the limit in bytes.
	Limit int64
}

// Error implements error.
func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("%s %s answered %d with a body larger than the %d-byte limit; the endpoint is probably not the service azcred expects: check the configured address",
		e.Method, e.URL, e.StatusCode, e.Limit)
}

// RequestError reports a request that got no usable answer: every try failed
// in transport (connection refused or dropped, timeout, TLS failure), or the
// caller's context ended. It wraps the last try's error, without the URL
// query that Go's own errors would repeat.
type RequestError struct {
	// Method and URL name the request; URL has no query string.
	Method, URL string
	// Tries is the number of tries made.
	Tries int
	// Err is the last try's error.
	Err error
}

// Error implements error.
func (e *RequestError) Error() string {
	what := e.Err.Error()
	switch {
	case errors.Is(e.Err, context.Canceled):
		what = "the caller cancelled the request"
	case errors.Is(e.Err, context.DeadlineExceeded):
		what = "timed out (" + what + ")"
	case errors.Is(e.Err, io.EOF), errors.Is(e.Err, io.ErrUnexpectedEOF):
		what = "the server closed the connection before a complete answer (" + what + ")"
	}
	return fmt.Sprintf("%s %s failed after %d %s: %s; check the address, the network and any proxy settings",
		e.Method, e.URL, e.Tries, plural(e.Tries, "try", "tries"), what)
}

// Unwrap returns the last try's error.
func (e *RequestError) Unwrap() error { return e.Err }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
