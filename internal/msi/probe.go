package msi

import (
	"context"
	"fmt"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/httpx"
)

type result struct {
	resp *httpx.Response
	err  error
}

// chainFirst is IMDS inside a chain, where a machine without IMDS must be
// found out within about the probe timeout, and a machine with one must pay
// for its first token with one request.
//
// The first request is the real token request, sent once. Connecting is
// bounded by the probe timeout (the transport's dialer). When no answer
// comes within the probe timeout (on the injected clock), the connection
// state decides: no connection means no IMDS; a connection that does not
// answer may be a cold IMDS that is fetching the token from Entra, so one
// header-less probe asks whether anything HTTP is there. Any answer means
// IMDS: the token request then completes or is retried under the full
// policy, in this same call. A 404, 410, 429 or 5xx answer to the first
// request continues under the full policy too.
//
// Any HTTP answer, to the token request or to the probe, ends chain mode
// for the client (sawIMDS): later requests go through the full policy,
// with connections no longer bounded by the probe timeout.
func (c *Client) chainFirst(ctx context.Context, req *httpx.Request, start time.Time) (*httpx.Response, error) {
	firstCtx, cancelFirst := context.WithCancel(ctx)
	defer cancelFirst()
	var connected atomic.Bool
	if c.traced {
		firstCtx = httptrace.WithClientTrace(firstCtx, &httptrace.ClientTrace{
			GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
		})
	}
	first := make(chan result, 1)
	go func() {
		r, err := c.single.Do(firstCtx, req)
		first <- result{r, err}
	}()
	stopFirst := func() {
		cancelFirst()
		<-first
	}

	timer := c.clock.NewTimer(c.probeTO)
	select {
	case r := <-first:
		timer.Stop()
		return c.afterFirst(ctx, req, start, r, false)
	case <-ctx.Done():
		timer.Stop()
		stopFirst()
		return nil, c.cancelled(ctx, req)
	case <-timer.C():
	}

	if c.traced && !connected.Load() {
		stopFirst()
		return nil, &UnavailableError{Msg: fmt.Sprintf("no connection to IMDS at %s within %s: this machine has no managed identity endpoint", httpx.SafeURL(c.endpoint), c.probeTO)}
	}
	c.logger.Debug("azcred IMDS has not answered within the probe timeout; probing", "timeout", c.probeTO)
	alive, early, err := c.probe(ctx, first)
	switch {
	case err != nil:
		stopFirst()
		return nil, c.cancelled(ctx, req)
	case early != nil:
		return c.afterFirst(ctx, req, start, *early, early.err == nil)
	case !alive:
		stopFirst()
		return nil, &UnavailableError{Msg: fmt.Sprintf("IMDS at %s accepted the connection but answered neither the token request nor a probe within %s: this machine has no working managed identity endpoint", httpx.SafeURL(c.endpoint), c.probeTO)}
	}
	c.logger.Debug("azcred IMDS answered the probe; waiting for the token")
	select {
	case r := <-first:
		return c.afterFirst(ctx, req, start, r, true)
	case <-ctx.Done():
		stopFirst()
		return nil, c.cancelled(ctx, req)
	}
}

// probe sends one request without the Metadata header and without query to
// the IMDS endpoint and reports whether anything answered in HTTP within the
// probe timeout. When the first request answers meanwhile, probe stops and
// returns that answer as early.
func (c *Client) probe(ctx context.Context, first <-chan result) (alive bool, early *result, err error) {
	probeCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan result, 1)
	u := *c.endpoint
	u.RawQuery = ""
	go func() {
		r, err := c.single.Do(probeCtx, &httpx.Request{URL: u.String()})
		answers <- result{r, err}
	}()
	timer := c.clock.NewTimer(c.probeTO)
	defer timer.Stop()
	select {
	case p := <-answers:
		if p.err == nil {
			c.sawIMDS()
		}
		return p.err == nil, nil, nil
	case r := <-first:
		cancel()
		<-answers
		return true, &r, nil
	case <-timer.C():
		cancel()
		<-answers
		return false, nil, nil
	case <-ctx.Done():
		cancel()
		<-answers
		return false, nil, ctx.Err()
	}
}

// afterFirst decides what the first answer means. alive says whether IMDS
// has shown itself (by answering the probe).
func (c *Client) afterFirst(ctx context.Context, req *httpx.Request, start time.Time, r result, alive bool) (*httpx.Response, error) {
	if r.err == nil || alive {
		c.sawIMDS()
	}
	if c.firstAnswered != nil {
		c.firstAnswered()
	}
	if r.err != nil {
		if ctx.Err() != nil {
			return nil, c.cancelled(ctx, req)
		}
		if !alive {
			return nil, &UnavailableError{Msg: fmt.Sprintf("no answer from IMDS at %s: this machine has no managed identity endpoint", httpx.SafeURL(c.endpoint)), Err: r.err}
		}
		return c.do(ctx, req, start)
	}
	if !retryableStatus(r.resp.StatusCode) || c.retryOff {
		return r.resp, nil
	}
	wait := c.http.Policy().RetryDelay
	if s, err := strconv.Atoi(strings.TrimSpace(r.resp.Header.Get("Retry-After"))); err == nil && s > 0 {
		wait = time.Duration(s) * time.Second
		if max := c.http.Policy().MaxRetryDelay; max > 0 && wait > max {
			return nil, &httpx.RetryAfterTooLongError{Method: req.Method, URL: httpx.SafeURL(c.endpoint), Wait: wait, Limit: max, Tries: 1, Response: r.resp}
		}
	}
	if err := clock.Sleep(ctx, c.clock, wait); err != nil {
		return nil, c.cancelled(ctx, req)
	}
	return c.do(ctx, req, start)
}

func (c *Client) cancelled(ctx context.Context, req *httpx.Request) error {
	return &httpx.RequestError{Method: req.Method, URL: httpx.SafeURL(c.endpoint), Tries: 1, Err: ctx.Err()}
}
