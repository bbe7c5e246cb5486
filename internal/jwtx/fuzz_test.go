package jwtx

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzDecodeClaims reads arbitrary text as a JWT: no panic, an error never
// repeats a segment of the token, and Decode inverts Encode.
func FuzzDecodeClaims(f *testing.F) {
	for _, seed := range []string{
		"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDAsInRpZCI6InQiLCJvaWQiOiJvIn0.c2ln",
		"eyJhbGciOiJub25lIn0.eyJleHAiOiIxNzAwMDAwMDAwIn0.",
		"eyJhbGciOiJub25lIn0=.eyJleHAiOjF9==.x",
		"a.b.c", "..", ".", "", "not-a-jwt", "e30.e30.e30", "e30.bnVsbA.e30", "e30.W10.e30",
		"eyJ0eXAi.eyJ\x00.x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		var claims map[string]any
		if err := DecodeClaims(token, &claims); err != nil {
			for _, seg := range strings.Split(token, ".") {
				if len(seg) >= 8 && strings.Contains(err.Error(), seg) {
					t.Fatalf("error %q repeats a segment of the token", err)
				}
			}
		}
		var header struct {
			Alg string `json:"alg"`
		}
		_ = DecodeHeader(token, &header)

		b, err := Decode(token)
		if err != nil {
			return
		}
		again, err := Decode(Encode(b))
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("Decode(Encode(%x)) = %x, %v", b, again, err)
		}
	})
}
