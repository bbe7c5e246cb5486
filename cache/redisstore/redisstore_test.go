package redisstore_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/cache/redisstore"
)

func newStore(t *testing.T, o redisstore.Options) *redisstore.Store {
	t.Helper()
	if o.EncryptionKey == nil {
		o.EncryptionKey = testKey
	}
	s, err := redisstore.New(o)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func getToken(t *testing.T, c azcred.TokenCredential) string {
	t.Helper()
	tok, err := c.GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: []string{armScope}})
	require.NoError(t, err)
	return tok.Token
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	_, err := redisstore.New(redisstore.Options{EncryptionKey: testKey})
	assert.ErrorContains(t, err, "Options.Addr")
	_, err = redisstore.New(redisstore.Options{Addr: "127.0.0.1:1", EncryptionKey: []byte("short")})
	assert.ErrorContains(t, err, "must be 32 random bytes")
	_, err = redisstore.New(redisstore.Options{Addr: "127.0.0.1:1", EncryptionKey: testKey, PreviousEncryptionKeys: [][]byte{{1}}})
	assert.ErrorContains(t, err, "PreviousEncryptionKeys[0]")
}

// TestMultiProcessSharing: separate processes of one identity. The first
// asks Entra ID; the ones started after it make no token request and get
// the same token from Redis.
func TestMultiProcessSharing(t *testing.T) {
	t.Parallel()
	f := newFleet(t, nil)
	first := runChild(t, f.cfg)
	require.Equal(t, 1, f.tokenRequests())

	const n = 4
	results := make([]childResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = runChild(t, f.cfg) })
	}
	wg.Wait()
	for i, r := range results {
		assert.Equal(t, first.TokenHash, r.TokenHash, "process %d got the fleet's token", i+2)
	}
	assert.Equal(t, 1, f.tokenRequests(), "processes after the first made no token request")
}

// TestRefreshLockContention: ten stores (ten processes' connections) find
// the shared token due for refresh at the same moment. One takes the lock
// and fetches; the nine others fetch nothing, keep serving the token they
// have and are told to look again shortly; after the holder saved, a look
// gets its token without a fetch.
func TestRefreshLockContention(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	k := cache.EntryKey{Kind: cache.KindAccessToken, Partition: "contention@https://login.example", Key: "t s"}
	now := time.Now()
	seed := newStore(t, redisstore.Options{Addr: r.addr()})
	require.NoError(t, seed.Save(context.Background(), k, cache.Entry{Value: "old", ExpiresOn: now.Add(time.Hour), RefreshOn: now.Add(-time.Second)}))

	var fetches atomic.Int32
	release := make(chan struct{})
	source := func(ctx context.Context, _ cache.Request) (cache.Token, error) {
		fetches.Add(1)
		<-release
		return cache.Token{Value: "new", ExpiresOn: time.Now().Add(time.Hour)}, nil
	}
	const n = 10
	type res struct {
		tok cache.Token
		err error
	}
	results := make(chan res, n)
	start := time.Now()
	for range n {
		f := cache.WithStore(source, cache.StoreOptions{Store: newStore(t, redisstore.Options{Addr: r.addr()}), Key: func(cache.Request) cache.EntryKey { return k }})
		go func() {
			tok, err := f(context.Background(), cache.Request{Scopes: []string{"s"}})
			results <- res{tok, err}
		}()
	}
	for range n - 1 {
		got := <-results
		require.NoError(t, got.err)
		assert.Equal(t, "old", got.tok.Value, "a process that did not get the lock keeps the token it has")
		assert.True(t, got.tok.RefreshOn.After(start) && !got.tok.RefreshOn.After(time.Now().Add(500*time.Millisecond)), "and looks again within half a second")
	}
	assert.Equal(t, int32(1), fetches.Load(), "one fetch for ten processes")
	close(release)
	holder := <-results
	require.NoError(t, holder.err)
	assert.Equal(t, "new", holder.tok.Value)

	again := cache.WithStore(source, cache.StoreOptions{Store: newStore(t, redisstore.Options{Addr: r.addr()}), Key: func(cache.Request) cache.EntryKey { return k }})
	tok, err := again(context.Background(), cache.Request{Scopes: []string{"s"}})
	require.NoError(t, err)
	assert.Equal(t, "new", tok.Value, "the holder's token, from Redis")
	assert.Equal(t, int32(1), fetches.Load())
}

// TestLockHolderDeath: a process takes the refresh lock and is killed. The
// others keep serving their token meanwhile, and once the lease has run out
// one of them refreshes.
func TestLockHolderDeath(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	const lease = time.Second
	store := newStore(t, redisstore.Options{Addr: r.addr(), LockLease: lease})
	now := time.Now()
	require.NoError(t, store.Save(context.Background(), lockedKey, cache.Entry{Value: "old", ExpiresOn: now.Add(time.Hour), RefreshOn: now.Add(-time.Second)}))

	started := time.Now()
	kill := startLockHolder(t, childConfig{Redis: r.addr(), Lease: lease.String()})
	kill()
	died := time.Now()

	var fetches atomic.Int32
	f := cache.WithStore(func(context.Context, cache.Request) (cache.Token, error) {
		fetches.Add(1)
		return cache.Token{Value: "new", ExpiresOn: time.Now().Add(time.Hour)}, nil
	}, cache.StoreOptions{Store: store, Key: func(cache.Request) cache.EntryKey { return lockedKey }})
	tok, err := f(context.Background(), cache.Request{Scopes: []string{armScope}})
	require.NoError(t, err)
	assert.Equal(t, "old", tok.Value, "the dead holder's lock still stands: the held token is served")
	assert.Zero(t, fetches.Load())

	for tok.Value != "new" {
		require.Less(t, time.Since(died), lease+3*time.Second, "the lease of a dead holder must run out")
		time.Sleep(50 * time.Millisecond)
		tok, err = f(context.Background(), cache.Request{Scopes: []string{armScope}})
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), fetches.Load(), "refreshed once the lease ended")
	assert.GreaterOrEqual(t, time.Since(started), lease, "not before the lease ended")
}

// TestRedisTrouble: Redis killed, paused (slow), refusing the password or
// out of memory. GetToken never fails, each call costs at most about the
// store timeout, and the outage is logged once.
func TestRedisTrouble(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name   string
		server []string
		client func(addr string) redis.UniversalClient
		break_ func(t *testing.T, r *redisServer)
	}{
		{name: "killed", break_: func(t *testing.T, r *redisServer) { r.kill() }},
		{name: "slow", break_: func(t *testing.T, r *redisServer) {
			require.NoError(t, r.admin("").Do(context.Background(), "CLIENT", "PAUSE", "3000", "ALL").Err())
		}},
		{name: "wrong password", server: []string{"--requirepass", "right"}, client: func(addr string) redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: addr, Password: "wrong", ContextTimeoutEnabled: true, MaxRetries: -1})
		}},
		{name: "full", break_: func(t *testing.T, r *redisServer) {
			a := r.admin("")
			require.NoError(t, a.ConfigSet(context.Background(), "maxmemory-policy", "noeviction").Err())
			require.NoError(t, a.ConfigSet(context.Background(), "maxmemory", "1").Err())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, nil)
			if tc.server != nil {
				f.redis.kill()
				f.redis.args = tc.server
				f.redis.start()
			}
			logs := &logRecorder{}
			o := redisstore.Options{Addr: f.redis.addr(), Timeout: timeout, Backoff: time.Minute, Logger: slog.New(logs)}
			if tc.client != nil {
				c := tc.client(f.redis.addr())
				t.Cleanup(func() { c.Close() })
				o.Client = c
			}
			store := newStore(t, o)
			if tc.break_ != nil {
				tc.break_(t, f.redis)
			}
			const n = 8
			for i := range n {
				start := time.Now()
				getToken(t, f.credential(t, store))
				took := time.Since(start)
				assert.Less(t, took, timeout+2*time.Second, "call %d: at most the store timeout plus the source's own time", i)
			}
			assert.Equal(t, n, f.tokenRequests(), "every process fell back to its source")
			assert.Equal(t, 1, logs.count(slog.LevelWarn, "Redis is not usable"), "one Warn per outage: %s", logs)
		})
	}
}

// TestRedisKilledAndRestarted: the store passes over Redis while it is
// down and uses it again once it is back.
func TestRedisKilledAndRestarted(t *testing.T) {
	t.Parallel()
	f := newFleet(t, nil)
	logs := &logRecorder{}
	const backoff = 300 * time.Millisecond
	store := newStore(t, redisstore.Options{Addr: f.redis.addr(), Backoff: backoff, Logger: slog.New(logs)})
	getToken(t, f.credential(t, store))
	getToken(t, f.credential(t, store))
	require.Equal(t, 1, f.tokenRequests(), "shared while Redis is up")

	f.redis.kill()
	for range 5 {
		getToken(t, f.credential(t, store))
	}
	assert.Equal(t, 6, f.tokenRequests(), "from the source while Redis is down")
	assert.Equal(t, 1, logs.count(slog.LevelWarn, "Redis is not usable"))

	f.redis.restart()
	deadline := time.Now().Add(10 * time.Second)
	for logs.count(slog.LevelInfo, "Redis works again") == 0 {
		require.True(t, time.Now().Before(deadline), "the store never used Redis again: %s", logs)
		time.Sleep(backoff / 2)
		getToken(t, f.credential(t, store))
	}
	before := f.tokenRequests()
	tok := getToken(t, f.credential(t, store))
	assert.Equal(t, tok, getToken(t, f.credential(t, store)))
	assert.Equal(t, before, f.tokenRequests(), "shared again after the restart")
	assert.Equal(t, 1, logs.count(slog.LevelWarn, "Redis is not usable"))
}

// TestWrongKey: a process given another key cannot read the fleet's
// entries; it asks its source, warns once, and never fails.
func TestWrongKey(t *testing.T) {
	t.Parallel()
	f := newFleet(t, nil)
	getToken(t, f.credential(t, newStore(t, redisstore.Options{Addr: f.redis.addr()})))
	logs := &logRecorder{}
	wrong := newStore(t, redisstore.Options{Addr: f.redis.addr(), EncryptionKey: bytesOf(2), Logger: slog.New(logs)})
	k := storedKey(f)
	for range 3 {
		_, ok, err := wrong.Load(context.Background(), k)
		require.NoError(t, err)
		assert.False(t, ok)
	}
	assert.Equal(t, 1, logs.count(slog.LevelWarn, "sealed with a key this store was not given"), "%s", logs)
	getToken(t, f.credential(t, wrong))
	assert.Equal(t, 2, f.tokenRequests())
}

// storedKey is the entry name the test credential uses for armScope.
func storedKey(f *fleet) cache.EntryKey {
	return cache.EntryKey{Kind: cache.KindAccessToken, Partition: testClient + "@" + f.emu.URL(), Key: testTenant + " " + armScope}
}

// TestKeyRotation: with the new key first and the old one among the
// previous keys, entries sealed with either are read; new entries are
// sealed with the new key, which a store that only has the old one cannot
// read.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	f := newFleet(t, nil)
	oldKey, newKey := bytesOf(3), bytesOf(4)
	old := newStore(t, redisstore.Options{Addr: f.redis.addr(), EncryptionKey: oldKey})
	tok := getToken(t, f.credential(t, old))
	rotated := newStore(t, redisstore.Options{Addr: f.redis.addr(), EncryptionKey: newKey, PreviousEncryptionKeys: [][]byte{oldKey}})
	assert.Equal(t, tok, getToken(t, f.credential(t, rotated)), "an entry sealed with the previous key is read")
	assert.Equal(t, 1, f.tokenRequests())

	k := storedKey(f)
	e, ok, err := rotated.Load(context.Background(), k)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, rotated.Save(context.Background(), k, e))
	newOnly := newStore(t, redisstore.Options{Addr: f.redis.addr(), EncryptionKey: newKey})
	got, ok, err := newOnly.Load(context.Background(), k)
	require.NoError(t, err)
	assert.True(t, ok, "sealed with the new key")
	assert.Equal(t, tok, got.Value)
	_, ok, err = old.Load(context.Background(), k)
	require.NoError(t, err)
	assert.False(t, ok, "the old key alone no longer reads it")
}

// TestTamperedEntries: a changed byte, a truncated value, or an entry
// copied under another entry's key is ignored with a Debug record, never
// served.
func TestTamperedEntries(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	logs := &logRecorder{}
	store := newStore(t, redisstore.Options{Addr: r.addr(), Logger: slog.New(logs)})
	admin := r.admin("")
	ctx := context.Background()
	a := cache.EntryKey{Kind: cache.KindAccessToken, Partition: "app-a@https://login.example", Key: "t s"}
	b := cache.EntryKey{Kind: cache.KindAccessToken, Partition: "app-b@https://login.example", Key: "t s"}
	entry := cache.Entry{Value: "secret-token", ExpiresOn: time.Now().Add(time.Hour), RefreshOn: time.Now().Add(50 * time.Minute)}

	require.NoError(t, store.Save(ctx, a, entry))
	raw, err := admin.Get(ctx, store.RedisKey(a)).Bytes()
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "secret-token", "encrypted at rest")
	assert.NotContains(t, store.RedisKey(a), "app-a", "the key names no client")
	ttl, err := admin.PTTL(ctx, store.RedisKey(a)).Result()
	require.NoError(t, err)
	assert.InDelta(t, time.Hour.Seconds(), ttl.Seconds(), 5, "expires with the token")

	for name, change := range map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)-3] ^= 1; return c },
		"truncated":    func(b []byte) []byte { return b[:10] },
		"not ours":     func([]byte) []byte { return []byte("plain text") },
	} {
		require.NoError(t, admin.Set(ctx, store.RedisKey(a), change(raw), time.Minute).Err())
		_, ok, err := store.Load(ctx, a)
		require.NoError(t, err, name)
		assert.False(t, ok, name)
	}
	// Another identity's entry copied under this key does not decrypt: the
	// Redis key is bound as associated data.
	require.NoError(t, store.Save(ctx, b, entry))
	require.NoError(t, admin.Copy(ctx, store.RedisKey(b), store.RedisKey(a), 0, true).Err())
	_, ok, err := store.Load(ctx, a)
	require.NoError(t, err)
	assert.False(t, ok, "an entry copied under another key is not served")
	assert.GreaterOrEqual(t, logs.count(slog.LevelDebug, "ignoring an entry"), 4, "%s", logs)
	assert.Zero(t, logs.count(slog.LevelWarn, ""), "tampering is not a Warn: %s", logs)
	assert.NotContains(t, logs.String(), "secret-token")
}

// TestEntryKeysHoldTheIdentity: entries that differ in any part of their
// name never share a Redis key.
func TestEntryKeysHoldTheIdentity(t *testing.T) {
	t.Parallel()
	store := newStore(t, redisstore.Options{Addr: "127.0.0.1:1"})
	base := cache.EntryKey{Kind: cache.KindAccessToken, Partition: "client@https://login.microsoftonline.com", Key: "tenant scope"}
	variants := []cache.EntryKey{base}
	for _, change := range []func(*cache.EntryKey){
		func(k *cache.EntryKey) { k.Partition = "other@https://login.microsoftonline.com" },
		func(k *cache.EntryKey) { k.Partition = "client@https://login.chinacloudapi.cn" },
		func(k *cache.EntryKey) { k.Key = "tenant2 scope" },
		func(k *cache.EntryKey) { k.Key = "tenant scope2" },
		func(k *cache.EntryKey) { k.CAE = true },
		func(k *cache.EntryKey) { k.Kind = cache.KindRefreshToken },
		func(k *cache.EntryKey) {
			k.Partition, k.Key = "client@https://login.microsoftonline.com tenant", "scope"
		},
	} {
		k := base
		change(&k)
		variants = append(variants, k)
	}
	seen := map[string]bool{}
	for _, k := range variants {
		rk := store.RedisKey(k)
		assert.True(t, strings.HasPrefix(rk, redisstore.DefaultKeyPrefix+"tok:"), rk)
		assert.False(t, seen[rk], "%+v shares a Redis key", k)
		seen[rk] = true
	}
}

// TestClusterClient: the store on a three-node Redis cluster, through a
// *redis.ClusterClient.
func TestClusterClient(t *testing.T) {
	t.Parallel()
	addrs := startCluster(t)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	store := newStore(t, redisstore.Options{Client: client})
	ctx := context.Background()
	for i := range 20 {
		k := cache.EntryKey{Kind: cache.KindAccessToken, Partition: "cluster@https://login.example", Key: "t scope-" + strings.Repeat("x", i)}
		require.NoError(t, store.Save(ctx, k, cache.Entry{Value: "v" + k.Key, ExpiresOn: time.Now().Add(time.Hour)}))
		got, ok, err := store.Load(ctx, k)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "v"+k.Key, got.Value)
		unlock, locked, err := store.TryLock(ctx, k)
		require.NoError(t, err)
		require.True(t, locked)
		_, again, err := store.TryLock(ctx, k)
		require.NoError(t, err)
		assert.False(t, again, "the lock is held")
		unlock()
		unlock2, locked, err := store.TryLock(ctx, k)
		require.NoError(t, err)
		assert.True(t, locked, "given back")
		unlock2()
	}
}
