package msi

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/redact"
)

func TestParseTokenForms(t *testing.T) {
	t.Parallel()
	received := time.Date(2023, 11, 14, 21, 0, 0, 0, time.UTC)
	exp := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC) // 1699999...: epoch 1700000000 is 22:13:20
	require.Equal(t, int64(1700000000), exp.Unix())
	for _, tc := range []struct {
		name string
		body string
		want time.Time
	}{
		{"epoch digits (IMDS, App Service 2019)", `{"access_token":"x","expires_on":"1700000000"}`, exp},
		{"epoch number (Service Fabric)", `{"access_token":"x","expires_on":1700000000}`, exp},
		{"epoch number in exponent form", `{"access_token":"x","expires_on":1.7e9}`, exp},
		{"App Service 2017 on Linux", `{"access_token":"x","expires_on":"11/14/2023 22:13:20 +00:00"}`, exp},
		{"App Service 2017 on Windows", `{"access_token":"x","expires_on":"11/14/2023 10:13:20 PM +00:00"}`, exp},
		{"Windows form without leading zeros", `{"access_token":"x","expires_on":"1/2/2024 3:04:05 AM +00:00"}`, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"date without zone", `{"access_token":"x","expires_on":"11/14/2023 22:13:20"}`, exp},
		{"SQL-style date", `{"access_token":"x","expires_on":"2023-11-14 22:13:20"}`, exp},
		{"RFC 3339", `{"access_token":"x","expires_on":"2023-11-14T22:13:20Z"}`, exp},
		{"RFC 3339 with offset", `{"access_token":"x","expires_on":"2023-11-15T00:13:20+02:00"}`, exp},
		{"expires_in digits", `{"access_token":"x","expires_in":"4400"}`, exp},
		{"expires_in number", `{"access_token":"x","expires_in":4400}`, exp},
		{"expires_on wins over expires_in", `{"access_token":"x","expires_on":"1700000000","expires_in":"1"}`, exp},
		{"empty expires_on falls back to expires_in", `{"access_token":"x","expires_on":"","expires_in":4400}`, exp},
		{"digits with spaces", `{"access_token":"x","expires_on":" 1700000000 "}`, exp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok, err := ParseToken([]byte(tc.body), received)
			require.NoError(t, err)
			assert.True(t, tc.want.Equal(tok.ExpiresOn), "got %s", tok.ExpiresOn)
			assert.Equal(t, "x", tok.AccessToken)
			if tc.want.Equal(exp) {
				assert.True(t, tok.RefreshOn.IsZero(), "a 73-minute token has no refresh hint")
			}
		})
	}
}

func TestParseTokenRefresh(t *testing.T) {
	t.Parallel()
	received := time.Unix(1_700_000_000, 0)
	tok, err := ParseToken([]byte(`{"access_token":"x","expires_in":86400}`), received)
	require.NoError(t, err)
	assert.Equal(t, received.Add(12*time.Hour), tok.RefreshOn, "a 24 h token refreshes at half-life")

	tok, err = ParseToken([]byte(`{"access_token":"x","expires_in":"7200"}`), received)
	require.NoError(t, err)
	assert.True(t, tok.RefreshOn.IsZero(), "exactly 2 h is not over 2 h")

	tok, err = ParseToken([]byte(`{"access_token":"x","expires_in":86400,"refresh_in":"3600"}`), received)
	require.NoError(t, err)
	assert.Equal(t, received.Add(time.Hour), tok.RefreshOn, "refresh_in wins")

	tok, err = ParseToken([]byte(`{"access_token":"x","expires_in":86400,"refresh_in":600,"client_id":"c","msi_res_id":"/r"}`), received)
	require.NoError(t, err)
	assert.Equal(t, received.Add(10*time.Minute), tok.RefreshOn)
	assert.Equal(t, map[string]string{"client_id": "c", "msi_res_id": "/r"}, tok.Fields)
}

func TestParseTokenMalformed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"HTML", `<html>hello</html>`, "not a JSON object"},
		{"empty", ``, "not a JSON object"},
		{"JSON array", `[1]`, "not a JSON object"},
		{"truncated", `{"access_token":"x","expires_on`, "not a JSON object"},
		{"no token", `{"expires_on":"1700000000"}`, "no access_token"},
		{"token not a string", `{"access_token":5,"expires_on":"1700000000"}`, "no access_token"},
		{"no expiry", `{"access_token":"x"}`, "neither expires_on nor expires_in"},
		{"null expiry", `{"access_token":"x","expires_on":null}`, "neither expires_on nor expires_in"},
		{"words", `{"access_token":"x","expires_on":"soon"}`, `"soon"`},
		{"negative epoch", `{"access_token":"x","expires_on":-5}`, "positive whole number"},
		{"fractional epoch", `{"access_token":"x","expires_on":1700000000.5}`, "positive whole number"},
		{"epoch overflow", `{"access_token":"x","expires_on":"99999999999999999999"}`, "out of range"},
		{"date in another order", `{"access_token":"x","expires_on":"14.11.2023 22:13:20"}`, "known form"},
		{"expires_in words", `{"access_token":"x","expires_in":"an hour"}`, "expires_in"},
		{"expires_in negative", `{"access_token":"x","expires_in":-1}`, "expires_in"},
		{"expires_in beyond ten years", `{"access_token":"x","expires_in":999999999999}`, "ten years"},
		{"expires_in object", `{"access_token":"x","expires_in":{}}`, "expires_in"},
		{"refresh_in words", `{"access_token":"x","expires_in":3600,"refresh_in":"later"}`, "refresh_in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseToken([]byte(tc.body), time.Unix(1_700_000_000, 0))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseTokenAlreadyExpiredIsAnError(t *testing.T) {
	t.Parallel()
	received := time.Unix(1_700_000_000, 0)
	for name, body := range map[string]string{
		"expires_in 0":              `{"access_token":"x","expires_in":0}`,
		"expires_in \"0\"":          `{"access_token":"x","expires_in":"0"}`,
		"expires_on now":            `{"access_token":"x","expires_on":1700000000}`,
		"expires_on digits, past":   `{"access_token":"x","expires_on":"1699999000"}`,
		"expires_on number, past":   `{"access_token":"x","expires_on":1600000000}`,
		"expires_on date, past":     `{"access_token":"x","expires_on":"11/14/2023 20:00:00 +00:00"}`,
		"expires_on RFC 3339, past": `{"access_token":"x","expires_on":"2020-01-01T00:00:00Z"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseToken([]byte(body), received)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "already expired")
		})
	}
	_, err := ParseToken([]byte(`{"access_token":"x","expires_in":1}`), received)
	assert.NoError(t, err, "a token valid for one more second is still a token")
}

func TestParseTokenNumberExpiresOnIsBoundedLikeDigits(t *testing.T) {
	t.Parallel()
	received := time.Unix(1_700_000_000, 0)
	for _, v := range []string{"99999999999999", "9.9e14", "9223372037"} {
		_, digitsErr := ParseToken([]byte(`{"access_token":"x","expires_on":"`+v+`"}`), received)
		_, numberErr := ParseToken([]byte(`{"access_token":"x","expires_on":`+v+`}`), received)
		require.Error(t, numberErr, v)
		assert.Contains(t, numberErr.Error(), "out of range", v)
		if digitsErr != nil {
			assert.Contains(t, digitsErr.Error(), "expires_on", v)
		}
	}
	tok, err := ParseToken([]byte(`{"access_token":"x","expires_on":9223372036}`), received)
	require.NoError(t, err, "the largest representable second is accepted in both forms")
	assert.Equal(t, int64(9223372036), tok.ExpiresOn.Unix())
}

func TestParseTokenErrorsHoldNoToken(t *testing.T) {
	t.Parallel()
	const secret = "eyJhbGciOiJSUzI1NiJ9.eyJzZWNyZXQiOnRydWV9.c2lnbmF0dXJl"
	_, err := ParseToken([]byte(`{"access_token":"`+secret+`","expires_on":"`+strings.Repeat("9", 80)+`"}`), time.Now())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
	assert.NotContains(t, redact.New().Body([]byte(`{"access_token":"`+secret+`","x":1}`), maxExcerpt), secret)
	assert.NotContains(t, redact.New().Body([]byte(`token=`+secret), maxExcerpt), secret)
	assert.Equal(t, "msi.Token{ExpiresOn: 1970-01-01T00:00:00Z, AccessToken: [REDACTED]}", Token{AccessToken: secret, ExpiresOn: time.Unix(0, 0).UTC()}.String())
}
