package cache

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// FuzzFileStore puts arbitrary bytes where the cache file lives: reading
// never fails or panics (a damaged file is an empty cache), and the store
// still saves and loads an entry afterwards.
func FuzzFileStore(f *testing.F) {
	for _, seed := range []string{
		`azc0{"version":1,"entries":[{"kind":"access_token","partition":"p","key":"k","value":"v","expiresOn":"2030-01-01T00:00:00Z"}]}`,
		`azc0{"version":1,"entries":[{"kind":"refresh_token","partition":"p","key":"k","cae":true,"value":"rt"},{"kind":"refresh_token","partition":"p","key":"k","cae":true,"value":"rt2"}]}`,
		`azc0{"version":1,"entries":[{"kind":"account","partition":"","key":"","value":"","expiresOn":"9999-12-31T23:59:59.999999999Z","refreshOn":"0001-01-01T00:00:00Z"}]}`,
		`azc0{"version":1,"entries":[{"expiresOn":"not a time"}]}`,
		`azc0{"version":2,"entries":[]}`,
		`azc0{"version":1,"entries":null}`,
		`azc0{"version":1}`, `azc0null`, `azc0`, `azc1`, "azc1" + string(bytes.Repeat([]byte{0}, 40)), `{"version":1}`, ``,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	probe := EntryKey{Kind: KindAccessToken, Partition: "p", Key: "k"}
	f.Fuzz(func(t *testing.T, content []byte, encrypted bool) {
		o := &FileStoreOptions{Dir: t.TempDir(), KeyStore: failingKeys{}, AllowUnencrypted: true}
		if encrypted {
			o.KeyStore = staticKeys(bytes.Repeat([]byte{7}, KeySize))
		}
		s, err := NewFileStore("fuzz", o)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.Path(), content, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		start := time.Now()
		if _, _, err := s.Load(ctx, probe); err != nil {
			t.Fatalf("Load failed on file content: %v", err)
		}
		want := Entry{Value: "fresh", ExpiresOn: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
		k := EntryKey{Kind: KindRefreshToken, Partition: "fuzz", Key: "new"}
		if err := s.Save(ctx, k, want); err != nil {
			t.Fatalf("Save after reading the file: %v", err)
		}
		got, ok, err := s.Load(ctx, k)
		if err != nil || !ok || got.Value != want.Value || !got.ExpiresOn.Equal(want.ExpiresOn) {
			t.Fatalf("Load after Save: %+v, %v, %v", got, ok, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("one input took %v", d)
		}
	})
}
