package ec2sim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// roleCredsLifetime is how long IMDS role credentials are valid; AWS's
// instance-profile credentials last about six hours.
const roleCredsLifetime = 6 * time.Hour

// roleCreds is one set of temporary credentials of the instance role.
type roleCreds struct {
	akid, secret, token string
	issued, expires     time.Time
}

// randString returns n characters of alphabet drawn from crypto/rand.
func randString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

const (
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	secretABC  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

func newRoleCreds(now time.Time) *roleCreds {
	tok := make([]byte, 300)
	_, _ = rand.Read(tok)
	return &roleCreds{
		akid:    "ASIA" + randString(16, upperAlnum),
		secret:  randString(40, secretABC),
		token:   "IQoJb3JpZ2luX2VjE" + base64.StdEncoding.EncodeToString(tok),
		issued:  now.UTC().Truncate(time.Second),
		expires: now.UTC().Truncate(time.Second).Add(roleCredsLifetime),
	}
}

// currentRoleCreds returns the credentials IMDS hands out now. Like AWS,
// which makes new credentials available before the old ones expire, it
// rotates them once less than an hour is left; older sets stay valid until
// they expire.
func (s *Sim) currentRoleCreds(now time.Time) *roleCreds {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	cur := s.roleCreds[len(s.roleCreds)-1]
	if now.Add(time.Hour).After(cur.expires) {
		cur = newRoleCreds(now)
		s.roleCreds = append(s.roleCreds, cur)
	}
	return cur
}

// roleCredsFor finds the credentials with access key akid, if any.
func (s *Sim) roleCredsFor(akid string) *roleCreds {
	if !strings.HasPrefix(akid, "ASIA") {
		return nil
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for _, c := range s.roleCreds {
		if c.akid == akid {
			return c
		}
	}
	return nil
}

// RoleCredentials returns the instance-role credentials IMDS currently
// serves; all empty when the scenario has no instanceRole.
func (s *Sim) RoleCredentials() (accessKeyID, secretAccessKey, sessionToken string) {
	if s.role == "" {
		return "", "", ""
	}
	c := s.currentRoleCreds(time.Now())
	return c.akid, c.secret, c.token
}

// RoleName is the scenario's instanceRole ("" = none).
func (s *Sim) RoleName() string { return s.role }

// InstanceProfileARN is the ARN IMDS reports in meta-data/iam/info: the
// instance profile has the role's name, as the EC2 console creates it.
func (s *Sim) InstanceProfileARN() string {
	if s.role == "" {
		return ""
	}
	return "arn:aws:iam::" + s.w.account + ":instance-profile/" + s.role
}

// addRoleTree adds meta-data/iam/{info,security-credentials/<role>} to an
// IMDS tree.
func (s *Sim) addRoleTree(t map[string]string, now time.Time) {
	c := s.currentRoleCreds(now)
	const ts = "2006-01-02T15:04:05Z"
	info, _ := json.MarshalIndent(struct {
		Code               string
		LastUpdated        string
		InstanceProfileArn string
		InstanceProfileId  string
	}{"Success", c.issued.Format(ts), s.InstanceProfileARN(), s.profileID}, "", "  ")
	creds, _ := json.MarshalIndent(struct {
		Code            string
		LastUpdated     string
		Type            string
		AccessKeyId     string
		SecretAccessKey string
		Token           string
		Expiration      string
	}{"Success", c.issued.Format(ts), "AWS-HMAC", c.akid, c.secret, c.token, c.expires.Format(ts)}, "", "  ")
	t["meta-data/iam/info"] = string(info)
	t["meta-data/iam/security-credentials/"+s.role] = string(creds)
}
