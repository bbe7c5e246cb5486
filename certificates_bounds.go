package azcred

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// maxKDFIterations bounds every password-based key derivation ParseCertificates
// performs: PBKDF2 of an encrypted PKCS#8 key, and the MAC and every
// key-derivation of a PKCS#12 file. Real files use 2,048 (PKCS#12's
// customary count) to 600,000 (current OpenSSL and NIST guidance); ten
// million costs a few seconds, so a hostile file that asks for billions is
// refused before any derivation instead of pinning a CPU for minutes.
const maxKDFIterations = 10_000_000

// maxSafeDepth bounds the nesting of SafeContents bags in a PKCS#12 file.
const maxSafeDepth = 4

var (
	oidPKCS7Data          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidPKCS7EncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidPBMAC1             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	// PKCS#12's own password-based encryption schemes (RFC 7292,
	// appendix C) are the children of this arc.
	oidPKCS12PBE          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1}
	oidBagPKCS8Shrouded   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidBagSafeContents    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
	errPKCS12Structure    = errors.New("the data is neither PEM nor a valid PKCS#12 (.pfx) file")
	errIterationsNegative = errors.New("a key-derivation iteration count is not positive")
)

// The PKCS#12 structures (RFC 7292) as far as the pre-check reads them.
type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  p12MacData `asn1:"optional"`
}

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12MacData struct {
	Mac struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	MacSalt    []byte
	Iterations int64 `asn1:"optional,default:1"`
}

type p12EncryptedData struct {
	Version int
	Info    struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
		Content     asn1.RawValue `asn1:"tag:0,optional"`
	}
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue `asn1:"tag:0,explicit"`
	Attributes asn1.RawValue `asn1:"optional"`
}

type p12PBEParams struct {
	Salt       []byte
	Iterations int64
}

type p12PBKDF2Params struct {
	Salt       asn1.RawValue
	Iterations int64
	Rest       asn1.RawContent `asn1:"optional"`
}

type p12PBMAC1Params struct {
	KDF    pkix.AlgorithmIdentifier
	MacAlg pkix.AlgorithmIdentifier
}

// checkPKCS12Work reads a PKCS#12 file's structure and refuses it when the
// MAC or any key derivation visible without the password asks for more than
// maxKDFIterations: the MAC (classic or PBMAC1), the scheme of every
// encrypted content, and every shrouded key outside encrypted content. Keys
// inside encrypted content are reached only after the MAC has verified with
// the caller's password, so they come from someone who knew it. It does no
// cryptography; a file whose structure it cannot read is refused with
// errPKCS12Structure.
func checkPKCS12Work(data []byte) error {
	var pfx p12PFX
	if rest, err := asn1.Unmarshal(data, &pfx); err != nil || len(rest) != 0 {
		return errPKCS12Structure
	}
	if len(pfx.MacData.Mac.Algorithm.Algorithm) != 0 {
		if pfx.MacData.Mac.Algorithm.Algorithm.Equal(oidPBMAC1) {
			var p p12PBMAC1Params
			if _, err := asn1.Unmarshal(pfx.MacData.Mac.Algorithm.Parameters.FullBytes, &p); err != nil {
				return errPKCS12Structure
			}
			if err := checkPBKDF2Work("MAC", p.KDF); err != nil {
				return err
			}
		} else if err := checkIterations("MAC", pfx.MacData.Iterations); err != nil {
			return err
		}
	}
	if !pfx.AuthSafe.ContentType.Equal(oidPKCS7Data) {
		return nil
	}
	var authSafe []byte
	if _, err := asn1.Unmarshal(pfx.AuthSafe.Content.Bytes, &authSafe); err != nil {
		return errPKCS12Structure
	}
	var contents []p12ContentInfo
	if _, err := asn1.Unmarshal(authSafe, &contents); err != nil {
		return errPKCS12Structure
	}
	for _, ci := range contents {
		switch {
		case ci.ContentType.Equal(oidPKCS7Data):
			var safe []byte
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &safe); err != nil {
				return errPKCS12Structure
			}
			if err := checkSafeContents(safe, 0); err != nil {
				return err
			}
		case ci.ContentType.Equal(oidPKCS7EncryptedData):
			var ed p12EncryptedData
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
				return errPKCS12Structure
			}
			if err := checkAlgorithmWork("encrypted content", ed.Info.Algorithm); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSafeContents checks the shrouded keys of a SafeContents, following
// nested SafeContents bags up to maxSafeDepth.
func checkSafeContents(der []byte, depth int) error {
	if depth > maxSafeDepth {
		return fmt.Errorf("the PKCS#12 data nests key containers more than %d deep", maxSafeDepth)
	}
	var bags []p12SafeBag
	if _, err := asn1.Unmarshal(der, &bags); err != nil {
		return errPKCS12Structure
	}
	for _, b := range bags {
		switch {
		case b.ID.Equal(oidBagPKCS8Shrouded):
			var info encryptedPrivateKeyInfo
			if _, err := asn1.Unmarshal(b.Value.Bytes, &info); err != nil {
				return errPKCS12Structure
			}
			if err := checkAlgorithmWork("private key", info.Algorithm); err != nil {
				return err
			}
		case b.ID.Equal(oidBagSafeContents):
			if err := checkSafeContents(b.Value.Bytes, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAlgorithmWork checks the iteration count of a password-based
// encryption scheme: PBES2 with PBKDF2, or one of PKCS#12's own. Other
// algorithms derive nothing here and pass (the decoder refuses the ones it
// does not know).
func checkAlgorithmWork(what string, alg pkix.AlgorithmIdentifier) error {
	switch {
	case alg.Algorithm.Equal(oidPBES2):
		var p pbes2Params
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
			return errPKCS12Structure
		}
		return checkPBKDF2Work(what, p.KeyDerivation)
	case len(alg.Algorithm) == len(oidPKCS12PBE)+1 && alg.Algorithm[:len(oidPKCS12PBE)].Equal(oidPKCS12PBE):
		var p p12PBEParams
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
			return errPKCS12Structure
		}
		return checkIterations(what, p.Iterations)
	}
	return nil
}

// checkPBKDF2Work checks a key derivation that is PBKDF2; others pass.
func checkPBKDF2Work(what string, kdf pkix.AlgorithmIdentifier) error {
	if !kdf.Algorithm.Equal(oidPBKDF2) {
		return nil
	}
	var p p12PBKDF2Params
	if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
		return errPKCS12Structure
	}
	return checkIterations(what, p.Iterations)
}

func checkIterations(what string, n int64) error {
	if n < 1 {
		return fmt.Errorf("the PKCS#12 %s: %w", what, errIterationsNegative)
	}
	if n > maxKDFIterations {
		return fmt.Errorf("the PKCS#12 %s asks for %d key-derivation iterations; at most %d are accepted: re-export the file with OpenSSL 3's defaults (`openssl pkcs12 -export ...`)", what, n, maxKDFIterations)
	}
	return nil
}
