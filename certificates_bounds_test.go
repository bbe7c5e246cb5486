package azcred

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostilePFX builds a PKCS#12 file around the leaf certificate whose MAC,
// shrouded key and encrypted content ask for the given iteration counts (0
// leaves the MAC out). The MAC digest and ciphertexts are random-looking
// filler: the file is refused before any of it would be checked.
func hostilePFX(t *testing.T, macIter, keyIter, contentIter int64) []byte {
	t.Helper()
	mustMarshal := func(v any) []byte {
		b, err := asn1.Marshal(v)
		require.NoError(t, err)
		return b
	}
	explicit0 := func(der []byte) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
	}
	type bag struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	filler := make([]byte, 1200)
	for i := range filler {
		filler[i] = byte(i * 7)
	}

	// The shrouded key: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC.
	kdf := mustMarshal(struct {
		Salt       []byte
		Iterations int64
		PRF        pkix.AlgorithmIdentifier
	}{[]byte("saltsalt"), keyIter, pkix.AlgorithmIdentifier{Algorithm: oidHMACSHA256, Parameters: asn1.NullRawValue}})
	pbes2 := mustMarshal(pbes2Params{
		KeyDerivation: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
		Encryption:    pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: mustMarshal(make([]byte, 16))}},
	})
	shrouded := mustMarshal(encryptedPrivateKeyInfo{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: pbes2}},
		Data:      filler[:1216/16*16-16],
	})
	keyBags := mustMarshal([]bag{{ID: oidBagPKCS8Shrouded, Value: explicit0(shrouded)}})

	// The certificates: encrypted with PKCS#12's 3DES scheme.
	pbe := mustMarshal(p12PBEParams{Salt: []byte("saltsalt"), Iterations: contentIter})
	encrypted := mustMarshal(struct {
		Version int
		Info    struct {
			ContentType asn1.ObjectIdentifier
			Algorithm   pkix.AlgorithmIdentifier
			Content     asn1.RawValue
		}
	}{Info: struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
		Content     asn1.RawValue
	}{
		ContentType: oidPKCS7Data,
		Algorithm:   pkix.AlgorithmIdentifier{Algorithm: append(append(asn1.ObjectIdentifier{}, oidPKCS12PBE...), 3), Parameters: asn1.RawValue{FullBytes: pbe}},
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: certDER(t)},
	}})
	authSafe := mustMarshal([]contentInfo{
		{ContentType: oidPKCS7EncryptedData, Content: explicit0(encrypted)},
		{ContentType: oidPKCS7Data, Content: explicit0(mustMarshal(keyBags))},
	})
	pfx := struct {
		Version  int
		AuthSafe contentInfo
		MacData  asn1.RawValue `asn1:"optional"`
	}{Version: 3, AuthSafe: contentInfo{ContentType: oidPKCS7Data, Content: explicit0(mustMarshal(authSafe))}}
	if macIter != 0 {
		var mac p12MacData
		mac.Mac.Algorithm = pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, Parameters: asn1.NullRawValue}
		mac.Mac.Digest = filler[:32]
		mac.MacSalt, mac.Iterations = []byte("saltsalt"), macIter
		pfx.MacData = asn1.RawValue{FullBytes: mustMarshal(mac)}
	}
	return mustMarshal(pfx)
}

func certDER(t *testing.T) []byte {
	b, _ := pem.Decode(readCert(t, "leaf.pem"))
	require.NotNil(t, b)
	return b.Bytes
}

// parseWithin runs ParseCertificates and fails the test if it takes longer
// than d: a file that asks for 2^31 iterations must be refused at once, not
// after minutes of key derivation.
func parseWithin(t *testing.T, d time.Duration, data, password []byte) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, _, err := ParseCertificates(data, password)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("ParseCertificates still deriving keys after %v", d)
		return nil
	}
}

func TestParseCertificatesRefusesCostlyPKCS12(t *testing.T) {
	t.Parallel()
	const huge = 1 << 31
	cases := []struct {
		name                  string
		mac, key, content     int64
		password, wantInError string
	}{
		{name: "MAC", mac: huge, key: 2048, content: 2048, password: "pw", wantInError: "PKCS#12 MAC asks for 2147483648"},
		{name: "shrouded key", mac: 2048, key: huge, content: 2048, password: "pw", wantInError: "PKCS#12 private key asks for 2147483648"},
		{name: "encrypted content, no MAC", mac: 0, key: 2048, content: huge, password: "", wantInError: "PKCS#12 encrypted content asks for 2147483648"},
		{name: "one past the cap", mac: maxKDFIterations + 1, key: 2048, content: 2048, password: "pw", wantInError: "at most 10000000"},
		{name: "zero", mac: 2048, key: 0, content: 2048, password: "pw", wantInError: "not positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := hostilePFX(t, tc.mac, tc.key, tc.content)
			assert.Less(t, len(data), 4096, "a small file")
			err := parseWithin(t, 3*time.Second, data, []byte(tc.password))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantInError)
			assert.Contains(t, err.Error(), "ParseCertificates: ")
		})
	}
	// Files within the cap still reach the decoder (which finds the filler
	// MAC wrong), and real files still parse.
	err := parseWithin(t, 3*time.Second, hostilePFX(t, 2048, 2048, 2048), []byte("pw"))
	assert.ErrorIs(t, err, errWrongPassword)
	for _, name := range []string{"modern.pfx", "legacy.pfx"} {
		certs, key, err := ParseCertificates(readCert(t, name), []byte(fixturePassword))
		require.NoError(t, err, name)
		assert.NotNil(t, key)
		assert.NotEmpty(t, certs)
	}
}
