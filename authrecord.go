package azcred

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/azcred/azcred/internal/oauth"
)

// authenticationRecordVersion is the only AuthenticationRecord version.
const authenticationRecordVersion = "1.0"

// AuthenticationRecord names an account a person signed in with, so that a
// later run of the program can get that account's tokens without asking
// again (with a persistent cache that holds its refresh token). It holds no
// secret: it is safe to store in a plain file. Its JSON form is the one
// azidentity and azure-identity use.
type AuthenticationRecord struct {
	// Authority is the scheme and host of the authority that signed the
	// account in, such as "https://login.microsoftonline.com".
	Authority string `json:"authority"`
	// ClientID is the application the account signed in to.
	ClientID string `json:"clientId"`
	// HomeAccountID is "<object ID>.<home tenant ID>".
	HomeAccountID string `json:"homeAccountId"`
	// TenantID is the tenant the account signed in to.
	TenantID string `json:"tenantId"`
	// Username is the account's sign-in name.
	Username string `json:"username"`
	// Version is "1.0".
	Version string `json:"version"`
}

// MarshalJSON writes the record with version "1.0".
func (a AuthenticationRecord) MarshalJSON() ([]byte, error) {
	type plain AuthenticationRecord
	if a.Version == "" {
		a.Version = authenticationRecordVersion
	}
	return json.Marshal(plain(a))
}

// UnmarshalJSON reads a record, refusing any version but "1.0".
func (a *AuthenticationRecord) UnmarshalJSON(b []byte) error {
	type plain AuthenticationRecord
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.Version != authenticationRecordVersion {
		return fmt.Errorf("AuthenticationRecord: version %q is not supported; only %q is: sign in again with Authenticate to get a current record", p.Version, authenticationRecordVersion)
	}
	*a = AuthenticationRecord(p)
	return nil
}

func (a AuthenticationRecord) isZero() bool { return a == AuthenticationRecord{} }

// newAuthenticationRecord builds the record of the account a user token
// was issued to, from its ID token and client_info.
func newAuthenticationRecord(ut *oauth.UserToken, clientID string) (AuthenticationRecord, error) {
	if ut.IDToken == "" {
		return AuthenticationRecord{}, errors.New("the token response has no ID token, so the account is unknown")
	}
	id, err := oauth.ParseIDToken(ut.IDToken)
	if err != nil {
		return AuthenticationRecord{}, err
	}
	u, err := url.Parse(id.Issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return AuthenticationRecord{}, errors.New("the ID token's issuer is not a URL")
	}
	home := ""
	if ut.ClientInfo.UID != "" && ut.ClientInfo.UTID != "" {
		home = ut.ClientInfo.UID + "." + ut.ClientInfo.UTID
	} else if id.ObjectID != "" && id.TenantID != "" {
		home = id.ObjectID + "." + id.TenantID
	} else {
		return AuthenticationRecord{}, errors.New("the token response names no account (no client_info, and no oid and tid in the ID token)")
	}
	user := id.PreferredUsername
	if user == "" {
		user = id.UPN
	}
	aud := id.Audience
	if aud == "" {
		aud = clientID
	}
	return AuthenticationRecord{
		Authority:     u.Scheme + "://" + u.Host,
		ClientID:      aud,
		HomeAccountID: home,
		TenantID:      id.TenantID,
		Username:      user,
		Version:       authenticationRecordVersion,
	}, nil
}
