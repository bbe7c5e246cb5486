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
	"github.com/azcred/azcred/internal/probewait"
)

type result struct {
	resp *httpx.Response
	err  error
}

// probeGraceFraction sets the grace of a chain's first IMDS request: a
// fifth of the probe timeout (200 ms by default). A healthy IMDS answers
// well within it, so a VM pays one request and the chain starts nothing
// else; past it, the client tells the chain it is waiting on the network
// when nothing has connected, or probes when something accepted the
// connection and tells the chain once the probe is unanswered for another
// grace.
const probeGraceFraction = 5

// chainFirst is IMDS inside a chain, where a machine without IMDS must be
// found out within about the probe timeout, and a machine with one must pay
// for its first token with one request.
//
// The first request is the real token request, sent once. Connecting is
// bounded by the probe timeout (the transport's dialer). When no answer
// comes within the grace (a fifth of the probe timeout, on the injected
// clock), the client signals through probewait that it is waiting on the
// network, and the connection state decides what it waits for: with no
// connection, a connection until the probe timeout (none means no IMDS);
// with a connection, which may be a cold IMDS fetching the token from
// Entra or a local proxy or VPN that accepts everything and never answers,
// one header-less probe asks at once whether anything HTTP is there, within
// the probe timeout from the start (a connection made late gives the probe
// one more probe timeout, so the decision takes at most two). Any answer means
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

	grace := c.probeTO / probeGraceFraction
	deadline := c.clock.NewTimer(c.probeTO)
	defer deadline.Stop()
	graceTimer := c.clock.NewTimer(grace)
	defer graceTimer.Stop()
	select {
	case r := <-first:
		return c.afterFirst(ctx, req, start, r, false)
	case <-ctx.Done():
		stopFirst()
		return nil, c.cancelled(ctx, req)
	case <-graceTimer.C():
	}

	window := deadline.C()
	if c.traced && !connected.Load() {
		// Nothing has connected: most likely a machine outside Azure,
		// where the address is black-holed.
		probewait.Signal(ctx)
		select {
		case r := <-first:
			return c.afterFirst(ctx, req, start, r, false)
		case <-ctx.Done():
			stopFirst()
			return nil, c.cancelled(ctx, req)
		case <-deadline.C():
		}
		if !connected.Load() {
			stopFirst()
			return nil, &UnavailableError{Msg: fmt.Sprintf("no connection to IMDS at %s within %s: this machine has no managed identity endpoint", httpx.SafeURL(c.endpoint), c.probeTO)}
		}
		// A connection made late: the probe gets a window of its own.
		late := c.clock.NewTimer(c.probeTO)
		defer late.Stop()
		window = late.C()
	}
	c.logger.Debug("azcred IMDS has not answered within the grace; probing", "grace", grace)
	alive, early, err := c.probe(ctx, first, window, grace)
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
// the IMDS endpoint and reports whether anything answered in HTTP before
// window fires. When the probe has not answered within grace it signals
// through probewait that the client is waiting on the network. When the
// first request answers meanwhile, probe stops and returns that answer as
// early.
func (c *Client) probe(ctx context.Context, first <-chan result, window <-chan time.Time, grace time.Duration) (alive bool, early *result, err error) {
	probeCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan result, 1)
	u := *c.endpoint
	u.RawQuery = ""
	go func() {
		r, err := c.single.Do(probeCtx, &httpx.Request{URL: u.String()})
		answers <- result{r, err}
	}()
	waiting := c.clock.NewTimer(grace)
	defer waiting.Stop()
	for {
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
		case <-waiting.C():
			probewait.Signal(ctx)
		case <-window:
			cancel()
			<-answers
			return false, nil, nil
		case <-ctx.Done():
			cancel()
			<-answers
			return false, nil, ctx.Err()
		}
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
