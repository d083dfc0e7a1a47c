package profiles

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		pw       string
		problems []string // nil = valid
	}{
		{"Passw0rd!", nil},
		{"aB3$aB3$", nil},
		{"aB3^~-_?&aB3^~-_?&aB3^~-_?&aB3^~", nil}, // 32 characters, every "other" character
		{"aB3$aB3", []string{"is shorter than 8 characters"}},
		{"aB3$aB3$aB3$aB3$aB3$aB3$aB3$aB3$a", []string{"is longer than 32 characters"}},
		{"", []string{"is shorter than 8 characters", "has no lowercase letter", "has no uppercase letter", "has no digit", "has none of !@#$%^&*"}},
		{"qwertyuiop", []string{"has no uppercase letter", "has no digit", "has none of !@#$%^&*"}},
		{"Passw0rd?", []string{"has none of !@#$%^&*"}}, // ? is allowed, but does not count as special
		{"Passw0rd!:", []string{"contains a character that is not allowed"}},
		{"Passw0rd!,", []string{"contains a character that is not allowed"}},
		{`Passw0rd!"`, []string{"contains a character that is not allowed"}},
		{"Passw0rd!(", []string{"contains a character that is not allowed"}},
		{"Passw0rd!\n", []string{"contains a character that is not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.pw, func(t *testing.T) {
			err := CheckPassword(tt.pw)
			if tt.problems == nil {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var pe *PasswordError
			if !errors.As(err, &pe) {
				t.Fatalf("want *PasswordError, got %v", err)
			}
			if strings.Join(pe.Problems, "|") != strings.Join(tt.problems, "|") {
				t.Errorf("problems = %q, want %q", pe.Problems, tt.problems)
			}
			if !strings.Contains(err.Error(), PasswordRules) {
				t.Errorf("message does not state the rules: %v", err)
			}
			if len(tt.pw) >= 4 && strings.Contains(err.Error(), tt.pw) {
				t.Errorf("message echoes the password: %v", err)
			}
		})
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		pw, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != randomPasswordLen {
			t.Fatalf("length %d", len(pw))
		}
		if err := CheckPassword(pw); err != nil {
			t.Fatalf("generated password fails CheckPassword: %v", err)
		}
		if !strings.ContainsAny(pw, randomPasswordSpecials) {
			t.Fatal("generated password lacks one of RPS's required specials $@!%*#?")
		}
		if strings.Trim(pw, randomPasswordAlphabet) != "" {
			t.Fatal("generated password leaves the alphabet")
		}
		// The profile validator must take it as a static AMT and MEBx password.
		p := Profile{ProfileName: "p", Activation: ActivationACM, AMTPassword: pw, MEBxPassword: pw, DHCPEnabled: ptr(true)}
		if errs := p.Validate(); len(errs) != 0 {
			t.Fatalf("generated password fails the validator: %v", errs)
		}
		if seen[pw] {
			t.Fatal("duplicate password in 1,000 draws")
		}
		seen[pw] = true
	}
}

// TestRandomAlphabetWithinRules pins the reasoning of the alphabet comment:
// every symbol is allowed by the validator and by AMT.
func TestRandomAlphabetWithinRules(t *testing.T) {
	for _, c := range randomPasswordAlphabet {
		pw := "aA1!aA1!" + string(c)
		if err := CheckPassword(pw); err != nil {
			t.Errorf("alphabet symbol %q not allowed: %v", c, err)
		}
		if strings.ContainsRune(`",:`, c) {
			t.Errorf("alphabet symbol %q refused by AMT", c)
		}
	}
	for _, c := range randomPasswordSpecials {
		if !strings.ContainsRune("$@!%*#?", c) || !strings.ContainsRune(passwordSpecials, c) || !strings.ContainsRune(randomPasswordAlphabet, c) {
			t.Errorf("required special %q is not in both rule sets and the alphabet", c)
		}
	}
}

func TestGeneratePasswordBrokenSource(t *testing.T) {
	if _, err := generatePassword(iotest.ErrReader(errors.New("boom"))); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("read error not reported: %v", err)
	}
	// Only rejected bytes: must give up rather than spin.
	if _, err := generatePassword(repeatReader(0xff)); err == nil {
		t.Error("all-rejected source: want error")
	}
	// Accepted bytes that never make a valid password ('A' only).
	if _, err := generatePassword(repeatReader(0)); err == nil {
		t.Error("constant source: want error")
	}
}

func repeatReader(b byte) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		copy(p, bytes.Repeat([]byte{b}, len(p)))
		return len(p), nil
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
