package benchmarks

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/cache/redisstore"
)

// FleetChildArg is the first argument that makes a fleet binary (see
// [FleetOptions.Exe]) run [FleetChild] instead of its own main.
const FleetChildArg = "fleet-child"

// fleetEnv carries a child's configuration, as JSON.
const fleetEnv = "AZCRED_FLEET_CHILD"

// FleetOptions contains the parameters of [Fleet].
type FleetOptions struct {
	// Exe is a program that calls [FleetChild] with its remaining arguments
	// when its first argument is FleetChildArg, such as cmd/fleet. Required.
	Exe string
	// Processes is how many processes run at once. Default: 12.
	Processes int
	// Duration is how long each load run lasts. Default: 24 s.
	Duration time.Duration
	// RefreshIn is the emulator's refresh_in. Default: 4 s.
	RefreshIn time.Duration
	// FirstTokenRuns is how many new processes time their first token, with
	// and without the store. Default: 20.
	FirstTokenRuns int
	// Outage is how long Redis is down in the outage run, which starts it
	// a quarter into Duration. Default: 10 s.
	Outage time.Duration
	// Progress receives a line as each run starts. Default: discard.
	Progress io.Writer
}

// FleetResult is what [Fleet] measured.
type FleetResult struct {
	Processes         int
	Duration          time.Duration
	RefreshIn         time.Duration
	RequestsWithout   int // token requests, whole fleet, no store
	RequestsWith      int // token requests, whole fleet, Redis store
	FirstRuns         int
	FirstFromRedis    time.Duration // median first GetToken of a new process, fresh entry in Redis
	FirstFromRedisReq int           // token requests those processes made
	FirstFromSource   time.Duration // median first GetToken of a new process, no store
	Outage            time.Duration
	OutageCalls       int           // GetToken calls during the outage run
	OutageFailed      int           // of which failed
	OutageSlowest     time.Duration // slowest GetToken of the outage run
	OutageFirstWorst  time.Duration // slowest first token of a process started while Redis was down
	StoreTimeout      time.Duration
	SourceFirst       time.Duration // for comparison: FirstFromSource
}

// fleetChildConfig is what a child is told.
type fleetChildConfig struct {
	Redis     string        `json:"redis,omitempty"` // "" = no store
	Authority string        `json:"authority"`
	CAFile    string        `json:"caFile"`
	Key       []byte        `json:"key"`
	Run       time.Duration `json:"run"` // 0: first token only
	Every     time.Duration `json:"every"`
}

// fleetChildResult is what a child prints.
type fleetChildResult struct {
	First    time.Duration `json:"first"`
	Calls    int           `json:"calls"`
	Failures int           `json:"failures"`
	Slowest  time.Duration `json:"slowest"` // of the calls after the first
}

// FleetChild is one process of the fleet: it builds a ClientSecretCredential
// (with the Redis store when told), times its first GetToken and, when told
// to run, calls GetToken on a steady beat for that long. It prints its
// figures as JSON and returns the exit code.
func FleetChild(_ []string) int {
	var cfg fleetChildConfig
	if err := json.Unmarshal([]byte(os.Getenv(fleetEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "fleet child: bad configuration:", err)
		return 2
	}
	res, err := fleetChild(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet child:", err)
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func fleetChild(cfg fleetChildConfig) (fleetChildResult, error) {
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return fleetChildResult{}, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	o := &azcred.ClientSecretCredentialOptions{ClientOptions: azcred.ClientOptions{
		AuthorityHost: cfg.Authority,
		Transport:     &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}}
	if cfg.Redis != "" {
		s, err := redisstore.New(redisstore.Options{Addr: cfg.Redis, EncryptionKey: cfg.Key})
		if err != nil {
			return fleetChildResult{}, err
		}
		defer s.Close()
		o.Cache = s
	}
	c, err := azcred.NewClientSecretCredential(benchTenant, benchClient, benchSecret, o)
	if err != nil {
		return fleetChildResult{}, err
	}
	ctx := context.Background()
	req := azcred.TokenRequestOptions{Scopes: []string{armScope}}
	var res fleetChildResult
	start := time.Now()
	if _, err := c.GetToken(ctx, req); err != nil {
		return res, err
	}
	res.First = time.Since(start)
	res.Calls = 1
	end := time.Now().Add(cfg.Run)
	for time.Now().Before(end) {
		time.Sleep(cfg.Every)
		t := time.Now()
		_, err := c.GetToken(ctx, req)
		d := time.Since(t)
		res.Calls++
		res.Slowest = max(res.Slowest, d)
		if err != nil {
			res.Failures++
		}
	}
	return res, nil
}

// Fleet runs the fleet measurements: N processes for T seconds with and
// without a Redis store, new processes' first token from Redis and from the
// emulator, and Redis killed mid-run. It needs redis-server.
func Fleet(ctx context.Context, o FleetOptions) (FleetResult, error) {
	if o.Exe == "" {
		return FleetResult{}, errors.New("fleet: FleetOptions.Exe is required")
	}
	o.Processes = cmp.Or(o.Processes, 12)
	o.Duration = cmp.Or(o.Duration, 24*time.Second)
	o.RefreshIn = cmp.Or(o.RefreshIn, 4*time.Second)
	o.FirstTokenRuns = cmp.Or(o.FirstTokenRuns, 20)
	o.Outage = cmp.Or(o.Outage, 10*time.Second)
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	res := FleetResult{Processes: o.Processes, Duration: o.Duration, RefreshIn: o.RefreshIn, FirstRuns: o.FirstTokenRuns, Outage: o.Outage, StoreTimeout: redisstore.DefaultTimeout}

	e, err := emulator.New(&emulator.Options{TokenLifetime: 10 * time.Minute, RefreshIn: o.RefreshIn})
	if err != nil {
		return res, err
	}
	defer e.Close()
	if err := e.RegisterApp(emulator.App{TenantID: benchTenant, ClientID: benchClient, Secrets: []string{benchSecret}}); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "azcred-fleet-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, e.CertPEM(), 0o600); err != nil {
		return res, err
	}
	r, err := startRedisServer(dir)
	if err != nil {
		return res, err
	}
	defer r.stop()
	key := bytes.Repeat([]byte{7}, redisstore.KeySize)
	base := fleetChildConfig{Authority: e.URL(), CAFile: ca, Key: key, Every: 5 * time.Millisecond}

	run := func(cfg fleetChildConfig, n int) ([]fleetChildResult, error) {
		out := make([]fleetChildResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { out[i], errs[i] = runFleetChild(ctx, o.Exe, cfg) })
		}
		wg.Wait()
		return out, errors.Join(errs...)
	}

	fmt.Fprintf(progress, "fleet: %d processes for %v without a store\n", o.Processes, o.Duration)
	e.ResetRequests()
	without := base
	without.Run = o.Duration
	if _, err := run(without, o.Processes); err != nil {
		return res, err
	}
	res.RequestsWithout = tokenPOSTs(e)

	fmt.Fprintf(progress, "fleet: %d processes for %v with the Redis store\n", o.Processes, o.Duration)
	if err := r.flush(ctx); err != nil {
		return res, err
	}
	e.ResetRequests()
	with := without
	with.Redis = r.addr
	if _, err := run(with, o.Processes); err != nil {
		return res, err
	}
	res.RequestsWith = tokenPOSTs(e)

	fmt.Fprintf(progress, "fleet: first token of %d new processes, from Redis and from the emulator\n", o.FirstTokenRuns)
	// A long refresh_in for these runs, so the seeded entry stays fresh.
	e.SetRefreshIn(0)
	if err := r.flush(ctx); err != nil {
		return res, err
	}
	seed := base
	seed.Redis = r.addr
	if _, err := runFleetChild(ctx, o.Exe, seed); err != nil {
		return res, err
	}
	e.ResetRequests()
	var fromRedis, fromSource []time.Duration
	for range o.FirstTokenRuns {
		cr, err := runFleetChild(ctx, o.Exe, seed)
		if err != nil {
			return res, err
		}
		fromRedis = append(fromRedis, cr.First)
	}
	res.FirstFromRedisReq = tokenPOSTs(e)
	for range o.FirstTokenRuns {
		cr, err := runFleetChild(ctx, o.Exe, base)
		if err != nil {
			return res, err
		}
		fromSource = append(fromSource, cr.First)
	}
	res.FirstFromRedis, res.FirstFromSource = median(fromRedis), median(fromSource)
	res.SourceFirst = res.FirstFromSource

	fmt.Fprintf(progress, "fleet: %d processes for %v with Redis killed for %v\n", o.Processes, o.Duration, o.Outage)
	e.SetRefreshIn(o.RefreshIn)
	if err := r.flush(ctx); err != nil {
		return res, err
	}
	var loadRes []fleetChildResult
	var loadErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		loadRes, loadErr = run(with, o.Processes)
	}()
	sleepCtx(ctx, o.Duration/4)
	r.stop()
	down := time.Now()
	// New processes started while Redis is down.
	for time.Since(down) < o.Outage-time.Second {
		cr, err := runFleetChild(ctx, o.Exe, seed)
		if err != nil {
			return res, err
		}
		res.OutageFirstWorst = max(res.OutageFirstWorst, cr.First)
		sleepCtx(ctx, 500*time.Millisecond)
	}
	sleepCtx(ctx, o.Outage-time.Since(down))
	if err := r.start(); err != nil {
		return res, err
	}
	<-done
	if loadErr != nil {
		return res, loadErr
	}
	for _, cr := range loadRes {
		res.OutageCalls += cr.Calls
		res.OutageFailed += cr.Failures
		res.OutageSlowest = max(res.OutageSlowest, cr.Slowest)
	}
	return res, ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func runFleetChild(ctx context.Context, exe string, cfg fleetChildConfig) (fleetChildResult, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return fleetChildResult{}, err
	}
	cmd := exec.CommandContext(ctx, exe, FleetChildArg)
	cmd.Env = append(os.Environ(), fleetEnv+"="+string(b))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fleetChildResult{}, fmt.Errorf("fleet child: %w: %s", err, stderr.String())
	}
	var res fleetChildResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("fleet child printed %q: %w", out, err)
	}
	return res, nil
}

// redisServer is a redis-server on a free loopback port.
type redisServer struct {
	dir  string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func startRedisServer(dir string) (*redisServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	r := &redisServer{dir: dir, addr: addr}
	return r, r.start()
}

func (r *redisServer) start() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("fleet: redis-server is not installed; install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)")
	}
	_, port, _ := net.SplitHostPort(r.addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return err
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", r.addr); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("fleet: redis-server did not start on %s", r.addr)
}

func (r *redisServer) stop() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// flush empties the database with a plain RESP command.
func (r *redisServer) flush(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("*1\r\n$8\r\nFLUSHALL\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(buf[:n], []byte("+OK")) {
		return fmt.Errorf("fleet: FLUSHALL answered %q", buf[:n])
	}
	return nil
}

// FleetTable renders r as Markdown rows.
func FleetTable(r FleetResult) string {
	var b bytes.Buffer
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + " ms"
	}
	fmt.Fprintf(&b, "| measure | result |\n|---|---:|\n")
	fmt.Fprintf(&b, "| %d processes, %v, refresh_in %v: token requests without a store | %d |\n", r.Processes, r.Duration, r.RefreshIn, r.RequestsWithout)
	fmt.Fprintf(&b, "| … with the Redis store | %d |\n", r.RequestsWith)
	fmt.Fprintf(&b, "| New process, first token from Redis (median of %d): latency | %s |\n", r.FirstRuns, ms(r.FirstFromRedis))
	fmt.Fprintf(&b, "| … token requests those %d processes made | %d |\n", r.FirstRuns, r.FirstFromRedisReq)
	fmt.Fprintf(&b, "| New process, first token from the emulator, no store (median of %d): latency | %s |\n", r.FirstRuns, ms(r.FirstFromSource))
	fmt.Fprintf(&b, "| Redis killed for %v under load: failed GetToken (of %d) | %d |\n", r.Outage, r.OutageCalls, r.OutageFailed)
	fmt.Fprintf(&b, "| … slowest GetToken of the running processes (after their first) | %s |\n", ms(r.OutageSlowest))
	fmt.Fprintf(&b, "| … slowest first token of a process started while Redis was down (store timeout %v) | %s |\n", r.StoreTimeout, ms(r.OutageFirstWorst))
	return b.String()
}
