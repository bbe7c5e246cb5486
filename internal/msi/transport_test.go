package msi

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"
)

func TestDirectTransportIsSharedAndReleased(t *testing.T) {
	caller := &http.Transport{}
	a, b := directTransport(caller), directTransport(caller)
	if a != b {
		t.Fatal("two credentials with one caller transport got two copies")
	}
	if a == caller || a.Proxy != nil {
		t.Fatal("the copy must be the caller's transport without a proxy")
	}
	if other := directTransport(&http.Transport{}); other == a {
		t.Fatal("another caller transport shares the first one's copy")
	}
	count := func() int {
		directMu.Lock()
		defer directMu.Unlock()
		return len(directTransports)
	}
	runtime.KeepAlive(caller)
	caller = nil
	deadline := time.Now().Add(5 * time.Second)
	for count() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d copies still held after their caller transports were collected", count())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPinnedTransportIsSharedBoundedAndReleased(t *testing.T) {
	thumb := func(i int) string { return fmt.Sprintf("%040x", i+1) }
	count := func() int {
		pinnedMu.Lock()
		defer pinnedMu.Unlock()
		return pinnedTransports.Len()
	}
	a, err := pinnedClient(nil, thumb(0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := pinnedClient(nil, strings.ToUpper(thumb(0)))
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a.Transport != b.Transport {
		t.Fatal("two credentials with one thumbprint must get their own clients over one transport")
	}
	other, err := pinnedClient(nil, thumb(1))
	if err != nil {
		t.Fatal(err)
	}
	if other.Transport == a.Transport {
		t.Fatal("another thumbprint shares the first one's pinned transport")
	}

	caller := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	c1, err := pinnedClient(caller, thumb(0))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := pinnedClient(caller, thumb(0))
	if err != nil {
		t.Fatal(err)
	}
	if c1.Transport != c2.Transport || c1.Transport == a.Transport || c1.Transport == caller.Transport {
		t.Fatal("credentials with one caller transport share a pinned copy of it, apart from azcred's own")
	}
	if c1.Timeout != time.Minute || caller.CheckRedirect != nil {
		t.Fatal("the caller's client is copied, not changed")
	}

	for i := range 3 * pinnedMax {
		if _, err := pinnedClient(nil, thumb(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n > pinnedMax {
		t.Fatalf("%d pinned transports held; the bound is %d", n, pinnedMax)
	}

	// The entry of a caller transport goes when the transport does.
	base := &http.Transport{}
	key := pinnedKey{base: weak.Make(base), thumb: [20]byte{19: 1}}
	held := func() bool {
		pinnedMu.Lock()
		defer pinnedMu.Unlock()
		return pinnedTransports.Contains(key)
	}
	if _, err := pinnedClient(&http.Client{Transport: base}, thumb(0)); err != nil {
		t.Fatal(err)
	}
	if !held() {
		t.Fatal("the caller transport's pinned copy is not in the map")
	}
	runtime.KeepAlive(base)
	base = nil
	deadline := time.Now().Add(5 * time.Second)
	for held() {
		if time.Now().After(deadline) {
			t.Fatal("the pinned copy is still held after its caller transport was collected")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
