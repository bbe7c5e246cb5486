package jwtx

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want string
		err  bool
	}{
		{"eyJhIjoxfQ", `{"a":1}`, false},
		{"eyJhIjoxfQ==", `{"a":1}`, false},
		{"-_8", "\xfb\xff", false},
		{"+/8", "", true},
		{"a", "", true},
	}
	for _, tc := range cases {
		got, err := Decode(tc.in)
		if tc.err {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, string(got))
		assert.Equal(t, strings.TrimRight(tc.in, "="), Encode(got))
	}
}

func TestDecodeClaimsAndHeader(t *testing.T) {
	t.Parallel()
	token := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJleHAiOjE3MDAwMDAwMDAsInRpZCI6InQifQ.c2ln"
	var claims struct {
		Exp int64  `json:"exp"`
		Tid string `json:"tid"`
	}
	require.NoError(t, DecodeClaims(token, &claims))
	assert.Equal(t, int64(1700000000), claims.Exp)
	assert.Equal(t, "t", claims.Tid)
	var header map[string]any
	require.NoError(t, DecodeHeader(token, &header))
	assert.Equal(t, "k1", header["kid"])

	secretish := "SECRETPART"
	for _, bad := range []string{"", "a.b", "a.b.c.d", "x.!!" + secretish + ".y", "x.bm90IGpzb24.y"} {
		err := DecodeClaims(bad, &claims)
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), secretish)
	}
	assert.ErrorIs(t, DecodeClaims("a.b", &claims), ErrMalformed)
}

func TestSignVerifiesWithGolangJWT(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{PS256, RS256} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			tok, err := Sign(alg, map[string]any{"x5t": "abc", "alg": "none"}, map[string]any{"sub": "me"}, testKey)
			require.NoError(t, err)
			parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &testKey.PublicKey, nil },
				jwt.WithValidMethods([]string{alg}))
			require.NoError(t, err)
			assert.Equal(t, alg, parsed.Header["alg"], "Sign sets alg")
			assert.Equal(t, "JWT", parsed.Header["typ"])
			assert.Equal(t, "abc", parsed.Header["x5t"])
			sub, err := parsed.Claims.GetSubject()
			require.NoError(t, err)
			assert.Equal(t, "me", sub)
		})
	}
}

type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("hsm offline")
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	cases := []struct {
		name string
		alg  string
		key  crypto.Signer
		want string
	}{
		{"nil key", PS256, nil, "no signing key"},
		{"EC key", PS256, ec, "must be an RSA key"},
		{"bad alg", "HS256", testKey, `unsupported signing algorithm "HS256"`},
		{"signer fails", RS256, failingSigner{testKey}, "hsm offline"},
	}
	for _, tc := range cases {
		_, err := Sign(tc.alg, nil, map[string]any{}, tc.key)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
	_, err = Sign(PS256, nil, map[string]any{"c": make(chan int)}, testKey)
	assert.ErrorContains(t, err, "claims cannot be encoded")
}
