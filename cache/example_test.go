package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/azcred/azcred/cache"
)

// A credential keeps one Engine and asks it for every token; the engine calls
// the fetch function only when it has no usable token for the request.
func ExampleEngine() {
	fetches := 0
	fetch := func(_ context.Context, r cache.Request) (cache.Token, error) {
		fetches++
		return cache.Token{
			Value:     fmt.Sprintf("token %d for %v", fetches, r.Scopes),
			ExpiresOn: time.Now().Add(time.Hour),
		}, nil
	}
	e := cache.New(fetch, nil)
	defer e.Wait()

	ctx := context.Background()
	for _, scopes := range [][]string{{"a", "b"}, {"b", "a"}, {"c"}} {
		tok, err := e.Get(ctx, cache.Request{Scopes: scopes})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(tok.Value)
	}
	fmt.Println("fetches:", fetches)
	// Output:
	// token 1 for [a b]
	// token 1 for [a b]
	// token 2 for [c]
	// fetches: 2
}

// Schedule shows when a token is refreshed and until when it is handed out.
func ExampleSchedule() {
	received := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	for _, life := range []time.Duration{24 * time.Hour, time.Hour, 4 * time.Minute} {
		refreshAt, usableUntil := cache.Schedule(received, cache.Token{ExpiresOn: received.Add(life)}, 0)
		fmt.Printf("%v: refresh %s, usable until %s\n", life, refreshAt.Format(time.TimeOnly), usableUntil.Format(time.TimeOnly))
	}
	// Output:
	// 24h0m0s: refresh 21:00:00, usable until 08:59:30
	// 1h0m0s: refresh 09:55:00, usable until 09:59:30
	// 4m0s: refresh 09:02:00, usable until 09:03:36
}
