/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// corpusKeys is how many keys the scanner rules must all find.
const corpusKeys = 1000

// corpus is a directory of files as a leak would hold keys, and what a
// scanner must find in it.
type corpus struct {
	dir string
	// keys are the keys written in plain text, each in one of the usual
	// contexts; encoded are some of them again, base64-encoded in a
	// Kubernetes Secret manifest (as kubectl get secret -o yaml shows a
	// delivery Secret).
	keys, encoded []string
	// shapeless are look-alikes whose shape is not a key's: a scanner
	// must not report them (file "shapeless.txt").
	shapeless []string
	// badChecksum have a key's shape and a wrong checksum: a shape-only
	// scanner reports them (file "checksum.txt"); the checksum tells them
	// apart.
	badChecksum []string
	// planted are keys among keys that gitleaks' default rules hide
	// (keys.GitleaksDefaultsHide): of a prefix that starts with "true" or
	// holds "false" (keys.PrefixHiddenFromGitleaks), and one with "FaLsE"
	// in its random part.
	planted []string
}

// contexts are lines that hold a key as leaks do.
var contexts = []string{
	"IOT_API_KEY=%s",
	"export KEYWARD_KEY='%s'",
	"  api-key: \"%s\"",
	"{\"apiKey\": \"%s\", \"region\": \"eu\"}",
	"curl -H 'Authorization: Bearer %s' https://api.example.com/v1/things",
	"curl -H \"X-API-Key: %s\" https://api.example.com/v1/things",
	"const key = `%s`",
	"headers = {\"Authorization\": \"rest_api_key=%s\"}",
	"%s",
	"Use %s to call the API.",
	"| production | %s | do not share |",
	"<add key=\"ApiKey\" value=\"%s\" />",
}

// base62 is a key's alphabet, in the order keys.GenerateFrom maps bytes to
// characters.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// prefixes are valid key prefixes, two to eight characters.
var prefixes = []string{"kw", "iot", "pay", "a1", "zz9", "devices", "abcdefgh", "x0y1z2"}

func newCorpus(t *testing.T) *corpus {
	t.Helper()
	c := &corpus{dir: t.TempDir()}
	files := map[string]*bytes.Buffer{}
	add := func(file, line string) {
		if files[file] == nil {
			files[file] = &bytes.Buffer{}
		}
		files[file].WriteString(line + "\n")
	}
	for i := range corpusKeys {
		k, err := keys.Generate(prefixes[i%len(prefixes)])
		if err != nil {
			t.Fatal(err)
		}
		s := k.Plaintext()
		c.keys = append(c.keys, s)
		add(fmt.Sprintf("leak-%02d.txt", i%len(contexts)), fmt.Sprintf(contexts[i%len(contexts)], s))
		if i%20 == 0 {
			c.encoded = append(c.encoded, s)
			add("secret.yaml", "  api-key: "+base64.StdEncoding.EncodeToString([]byte(s)))
		}
		if i%10 == 0 {
			c.badChecksum = append(c.badChecksum, testgen.BadChecksum(s))
			c.shapeless = append(c.shapeless, shapeless(s, k.Prefix(), i/10)...)
		}
	}
	for i, k := range []keys.Key{plantKey(t, "truecar", ""), plantKey(t, "isfalse", ""), plantKey(t, "kw", "FaLsE")} {
		s := k.Plaintext()
		c.keys, c.planted = append(c.keys, s), append(c.planted, s)
		add(fmt.Sprintf("leak-%02d.txt", i), fmt.Sprintf(contexts[i], s))
	}
	for range 20 { // made up: random characters of a key's shape
		b := make([]byte, keys.RandomLength+keys.ChecksumLength)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, len(b))
		for i, x := range b {
			body[i] = base62[int(x)%62]
		}
		if s := "kw_" + string(body); keys.CheckFormat(s) != nil {
			c.badChecksum = append(c.badChecksum, s)
		}
	}
	for _, s := range c.badChecksum {
		add("checksum.txt", "API_KEY="+s)
	}
	for _, s := range c.shapeless {
		add("shapeless.txt", "token: "+s)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// plantKey returns a key with prefix whose random part holds word, from
// its 10th character; the rest is random.
func plantKey(t *testing.T, prefix, word string) keys.Key {
	t.Helper()
	k, err := keys.Generate(prefix)
	if err != nil {
		t.Fatal(err)
	}
	random := []byte(k.Plaintext()[len(prefix)+1:][:keys.RandomLength])
	copy(random[10:], word)
	src := make([]byte, 64) // GenerateFrom reads 64 bytes at a time
	for i, b := range random {
		src[i] = byte(strings.IndexByte(base62, b)) // a byte below 62 is that character
	}
	k, err = keys.GenerateFrom(bytes.NewReader(src), prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(k.Plaintext(), word) {
		t.Fatalf("planted key %s does not hold %q", k.ID(), word)
	}
	return k
}

// shapeless returns look-alikes of key whose shape is not a key's, two of
// the kinds below, by turn.
func shapeless(key, prefix string, turn int) []string {
	body := key[len(prefix)+1:]
	kinds := []string{
		key[:len(key)-1],                     // one character short
		key + "Q",                            // one too many
		strings.ToUpper(prefix) + "_" + body, // upper-case prefix
		"abcdefghi_" + body,                  // nine-character prefix
		"a_" + body,                          // one-character prefix
		prefix + "_" + body[:12] + "-" + body[13:], // a character outside base62
		"my_" + key, // glued to a word
		"9" + strings.Repeat("q", 8-len(prefix)) + key, // glued to a digit
	}
	return []string{kinds[(2*turn)%len(kinds)], kinds[(2*turn+1)%len(kinds)]}
}

// gitleaksFinding is what gitleaks' JSON report says of one finding.
type gitleaksFinding struct {
	RuleID string
	File   string
	Secret string
}

// gitleaks returns the gitleaks binary hack/gitleaks.sh builds from the Go
// module proxy (once; it is cached under bin/gitleaks/). A binary that
// cannot be built fails the test: it never skips where the test runs.
func gitleaks(t *testing.T, root string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(root, "hack", "gitleaks.sh"))
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/gitleaks.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestGitleaksRuleFindsEveryKey runs gitleaks v8.30.1 with
// docs/secret-scanning/gitleaks.toml over the corpus: it must find every
// key but those gitleaks' default rules hide (keys.GitleaksDefaultsHide,
// planted among them), which it must not report, and every key
// base64-encoded in a Secret manifest; it must not report look-alikes of
// another shape; it does report look-alikes of a key's shape with a wrong
// checksum, which the checksum check that identify makes tells apart from
// real keys. A copy of the file without its [extend] block, which
// docs/leaked-keys.md offers for a sweep, finds the hidden keys too.
func TestGitleaksRuleFindsEveryKey(t *testing.T) {
	if testenv.SkipsEndToEnd() {
		t.Skip("builds gitleaks from the Go module proxy; runs in make test, not make test-unit (-short); KEYWARD_REQUIRE_E2E=1 requires it")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := gitleaks(t, root)
	c := newCorpus(t)
	config := filepath.Join(root, "docs", "secret-scanning", "gitleaks.toml")
	c.check(t, "gitleaks", runGitleaks(t, bin, config, c.dir), keys.GitleaksDefaultsHide)

	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	const extend = "[extend]\nuseDefault = true\n"
	if !bytes.Contains(b, []byte(extend)) {
		t.Fatalf("gitleaks.toml has no %q block; docs/leaked-keys.md says to remove it", extend)
	}
	alone := filepath.Join(t.TempDir(), "keyward-only.toml")
	if err := os.WriteFile(alone, bytes.Replace(b, []byte(extend), nil, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	c.check(t, "gitleaks without its default rules", runGitleaks(t, bin, alone, c.dir), nil)
}

// runGitleaks runs gitleaks with config over dir and returns the secrets
// the keyward rule found, by file.
func runGitleaks(t *testing.T, bin, config, dir string) map[string]map[string]bool {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(bin, "dir", dir, "--config", config,
		"--report-format", "json", "--report-path", report, "--exit-code", "0", "--no-banner", "--redact=0", "--log-level", "warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var findings []gitleaksFinding
	if err := json.Unmarshal(b, &findings); err != nil {
		t.Fatalf("gitleaks report: %v", err)
	}
	found := map[string]map[string]bool{} // file → secrets
	var ours int
	for _, f := range findings {
		if f.RuleID != "keyward-api-key" {
			continue
		}
		ours++
		file := filepath.Base(f.File)
		if found[file] == nil {
			found[file] = map[string]bool{}
		}
		found[file][f.Secret] = true
	}
	t.Logf("gitleaks --config %s: %d findings of the keyward rule (%d in all)", filepath.Base(config), ours, len(findings))
	return found
}

// check compares what a scanner found, secrets by file, with the corpus.
// hides, when not nil, says which keys the scanner is known to drop: each
// must be missed (the planted ones are), and every other key found.
func (c *corpus) check(t *testing.T, scanner string, found map[string]map[string]bool, hides func(string) bool) {
	t.Helper()
	hid := func(s string) bool { return hides != nil && hides(s) }
	all := map[string]bool{}
	for file, secrets := range found {
		if file == "secret.yaml" {
			continue // decoded: counted below
		}
		for s := range secrets {
			all[s] = true
		}
	}
	var missed, hidden []string
	for _, k := range c.keys {
		switch {
		case hid(k):
			hidden = append(hidden, k)
			if all[k] {
				t.Errorf("%s reported %s, a key its default rules are documented to hide", scanner, k)
			}
		case !all[k]:
			missed = append(missed, k)
		}
	}
	if hides != nil {
		for _, k := range c.planted {
			if !hides(k) {
				t.Errorf("planted key %s is not one %s hides", k, scanner)
			}
		}
	}
	encoded, wantEncoded := 0, 0
	for _, k := range c.encoded {
		if !hid(k) {
			wantEncoded++
		}
		if found["secret.yaml"][k] {
			encoded++
		}
	}
	b64 := "not decoded"
	if found["secret.yaml"] != nil {
		b64 = fmt.Sprintf("%d of %d", encoded, wantEncoded)
	}
	t.Logf("%s: %d of %d keys found, %d known hidden; base64-encoded ones: %s; %d of %d look-alikes of another shape reported; %d of %d of a key's shape with a wrong checksum",
		scanner, len(c.keys)-len(missed)-len(hidden), len(c.keys), len(hidden), b64, len(found["shapeless.txt"]), len(c.shapeless), len(found["checksum.txt"]), len(c.badChecksum))
	if len(missed) > 0 {
		t.Errorf("%s missed %d of %d keys: %s", scanner, len(missed), len(c.keys), strings.Join(missed, ", "))
	}
	if found["secret.yaml"] != nil && encoded != wantEncoded {
		t.Errorf("%s found %d of %d base64-encoded keys", scanner, encoded, wantEncoded)
	}
	if n := len(found["shapeless.txt"]); n > 0 {
		t.Errorf("%s reported %d look-alikes that do not have a key's shape", scanner, n)
	}
	for _, s := range c.badChecksum {
		if !found["checksum.txt"][s] && !hid(s) {
			t.Errorf("%s did not report a look-alike of a key's shape; the documentation says it does", scanner)
			break
		}
	}
	// What identify and revoke --key do first: the checksum tells every
	// reported look-alike from a real key, before anything is looked up.
	for s := range found["checksum.txt"] {
		if _, err := readKey(strings.NewReader(s), nil); !errors.Is(err, errLookAlike) {
			t.Errorf("a look-alike %s reported is not told apart: %v", scanner, err)
		}
	}
	for s := range all {
		if _, err := readKey(strings.NewReader(s), nil); err != nil && !found["checksum.txt"][s] {
			t.Errorf("a key %s found is refused: %v", scanner, err)
		}
	}
}

// TestScannerPatternsFindEveryKey holds the TruffleHog detector and the
// GitHub custom pattern of docs/secret-scanning to the same corpus, as Go
// regular expressions: TruffleHog's are Go's; GitHub's are Hyperscan's, of
// which these expressions use only the common part.
func TestScannerPatternsFindEveryKey(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string, v any) {
		b, err := os.ReadFile(filepath.Join(root, "docs", "secret-scanning", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var th struct {
		Detectors []struct {
			Name     string            `json:"name"`
			Keywords []string          `json:"keywords"`
			Regex    map[string]string `json:"regex"`
		} `json:"detectors"`
	}
	read("trufflehog.yaml", &th)
	if len(th.Detectors) != 1 || len(th.Detectors[0].Regex) != 1 || len(th.Detectors[0].Keywords) == 0 {
		t.Fatalf("trufflehog.yaml: want one detector with one expression and keywords: %+v", th)
	}
	var gh struct {
		Name, SecretFormat, BeforeSecret, AfterSecret, TestString string
	}
	read("github-custom-pattern.yaml", &gh)

	c := newCorpus(t)
	for _, p := range []struct {
		scanner, expr string
		keywords      []string
	}{
		{"trufflehog", th.Detectors[0].Regex["key"], th.Detectors[0].Keywords},
		{"github", "(?:" + gh.BeforeSecret + ")(" + gh.SecretFormat + ")(?:" + gh.AfterSecret + ")", nil},
	} {
		t.Run(p.scanner, func(t *testing.T) {
			re := regexp.MustCompile(p.expr)
			if re.NumSubexp() != 1 {
				t.Fatalf("%s: want one capturing group, the key", p.expr)
			}
			found := scan(t, c.dir, re, p.keywords)
			delete(found, "secret.yaml") // neither decodes base64
			c.check(t, p.scanner, found, nil)
		})
	}
	if m := regexp.MustCompile("(?:" + gh.BeforeSecret + ")(" + gh.SecretFormat + ")(?:" + gh.AfterSecret + ")").FindStringSubmatch(gh.TestString); m == nil {
		t.Errorf("the GitHub pattern does not match its test string")
	}
}

// scan finds, line by line, the first group of re in the files of dir, on
// lines holding one of the keywords (none: every line).
func scan(t *testing.T, dir string, re *regexp.Regexp, keywords []string) map[string]map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]map[string]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !hasKeyword(line, keywords) {
				continue
			}
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				if found[e.Name()] == nil {
					found[e.Name()] = map[string]bool{}
				}
				found[e.Name()][m[1]] = true
			}
		}
	}
	return found
}

func hasKeyword(line string, keywords []string) bool {
	if len(keywords) == 0 {
		return true
	}
	for _, k := range keywords {
		if strings.Contains(strings.ToLower(line), strings.ToLower(k)) {
			return true
		}
	}
	return false
}
