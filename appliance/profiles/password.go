package profiles

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// The password rules, one definition for the validator, CheckPassword and
// GeneratePassword.
//
// RPS's validator is the JavaScript class `[a-zA-Z0-9$@$!%*#?&-_~^]{8,32}`
// with look-aheads for a digit, a lowercase and an uppercase letter and one
// of `!@#$%^&*`. Read literally by a JavaScript engine, `&-_` in that class is
// a range (0x26–0x5F) that also admits `'()+,./:;<=>[\]` — including `,` and
// `:`, which AMT refuses in an admin password (AMT: 8–32 characters, at least
// one lowercase, uppercase, digit and non-alphanumeric, no `"`, `,` or `:`).
// A password RPS accepts could therefore fail at the device, after the
// profile was stored. We implement the documented intent instead — the
// literal characters `&`, `-` and `_` — which is a subset of both RPS's
// effective set and AMT's, so every password we accept is one both accept.
const (
	minPasswordLen = 8
	maxPasswordLen = 32
	// passwordSpecials are the characters of which a password needs one (RPS's look-ahead).
	passwordSpecials = "!@#$%^&*"
	// passwordOthers are the further non-alphanumeric characters a password may contain.
	passwordOthers = "?-_~"
)

// PasswordRules states the complexity rules in the words used by error
// messages.
const PasswordRules = "8 to 32 characters from a-z, A-Z, 0-9 and $@!%*#?&-_~^, " +
	"with at least one lowercase letter, one uppercase letter, one digit and one of !@#$%^&*"

// PasswordError says which complexity rules a password breaks. It never
// contains the password, nor any character of it.
type PasswordError struct {
	// Problems are short phrases such as "has no digit", in a fixed order.
	Problems []string
}

func (e *PasswordError) Error() string {
	return "password " + e.describe()
}

func (e *PasswordError) describe() string {
	return strings.Join(e.Problems, ", ") + "; it must be " + PasswordRules
}

// CheckPassword checks a static AMT or MEBx password against the complexity
// rules and returns a *PasswordError naming every rule it breaks. The error
// never quotes the password, not even the offending character.
func CheckPassword(pw string) error {
	var problems []string
	n := utf8.RuneCountInString(pw)
	switch {
	case n < minPasswordLen:
		problems = append(problems, fmt.Sprintf("is shorter than %d characters", minPasswordLen))
	case n > maxPasswordLen:
		problems = append(problems, fmt.Sprintf("is longer than %d characters", maxPasswordLen))
	}
	var lower, upper, digit, special, bad bool
	for i := 0; i < len(pw); i++ {
		c := pw[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		case strings.IndexByte(passwordSpecials, c) >= 0:
			special = true
		case strings.IndexByte(passwordOthers, c) >= 0:
		default:
			bad = true
		}
	}
	if bad {
		problems = append(problems, "contains a character that is not allowed")
	}
	if !lower {
		problems = append(problems, "has no lowercase letter")
	}
	if !upper {
		problems = append(problems, "has no uppercase letter")
	}
	if !digit {
		problems = append(problems, "has no digit")
	}
	if !special {
		problems = append(problems, "has none of !@#$%^&*")
	}
	if len(problems) > 0 {
		return &PasswordError{Problems: problems}
	}
	return nil
}

// passwordProblem returns the validator message for a named password
// ("AMT", "MEBx"), or "" when the password is fine.
func passwordProblem(which, pw string) string {
	var pe *PasswordError
	if err := CheckPassword(pw); errors.As(err, &pe) {
		return which + " password " + pe.describe()
	}
	return ""
}

// Random passwords.
//
// RPS draws 16 characters from `A-Z a-z 0-9 ! @ # $ % ^ * ( )` and redraws
// until the password has an uppercase letter, a lowercase letter, a digit and
// one of `$@!%*#?` (reference §7.6). `(` and `)` are not in the character set
// our validator (and RPS's, read as documented) allows, so a generated
// password could not be re-entered as a static one or pass CheckPassword; we
// drop them. The remaining specials `!@#$%^*` are all allowed by AMT (no `"`,
// `,` or `:`) and by the validator. The "has a special" condition must satisfy
// both RPS's generator (`$@!%*#?`) and the validator (`!@#$%^&*`); within our
// alphabet that is one of `!@#$%*` (`^` alone is not enough for RPS's rule).
// 69 symbols × 16 positions give about 97 bits of entropy.
const (
	randomPasswordLen      = 16
	randomPasswordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!@#$%^*"
	randomPasswordSpecials = "!@#$%*"
	// maxPasswordDraws bounds the redraw loop. A draw fails the class
	// condition with probability about 0.25, so 100 failures in a row mean a
	// broken random source, not bad luck.
	maxPasswordDraws = 100
)

// GeneratePassword returns a fresh random AMT or MEBx password: 16
// characters from crypto/rand that satisfy RPS's generator rule, our
// validator and AMT. The password is returned only to the caller; this
// package keeps no copy.
func GeneratePassword() (string, error) {
	return generatePassword(rand.Reader)
}

func generatePassword(r io.Reader) (string, error) {
	const n = len(randomPasswordAlphabet)
	// Rejection sampling keeps the draw uniform: bytes at or above the
	// largest multiple of n are discarded instead of folded with a modulo bias.
	const limit = 256 - 256%n
	buf := make([]byte, 64)
	pw := make([]byte, 0, randomPasswordLen)
	for range maxPasswordDraws {
		pw = pw[:0]
		for reads := 0; len(pw) < randomPasswordLen; reads++ {
			// 64 bytes almost surely hold 16 accepted ones (each is accepted
			// with probability 207/256); a source that keeps failing is broken.
			if reads == maxPasswordDraws {
				return "", errors.New("generate password: random source yields no usable bytes; is it broken?")
			}
			if _, err := io.ReadFull(r, buf); err != nil {
				return "", fmt.Errorf("generate password: read random bytes: %w", err)
			}
			for _, b := range buf {
				if int(b) < limit && len(pw) < randomPasswordLen {
					pw = append(pw, randomPasswordAlphabet[int(b)%n])
				}
			}
		}
		s := string(pw)
		if strings.ContainsAny(s, randomPasswordSpecials) && CheckPassword(s) == nil {
			return s, nil
		}
	}
	return "", errors.New("generate password: random source produced no acceptable password; is it broken?")
}
