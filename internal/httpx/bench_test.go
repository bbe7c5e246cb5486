package httpx

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func BenchmarkDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"access_token":"x","expires_in":3599}`)
	}))
	defer srv.Close()
	c := New(Options{Transport: srv.Client()})
	req := &Request{Method: http.MethodPost, URL: srv.URL + "/t/oauth2/v2.0/token", Body: []byte("grant_type=client_credentials")}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Do(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
