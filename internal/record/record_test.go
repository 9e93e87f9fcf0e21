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

package record

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/keys"
)

func sample() *Record {
	k, _ := keys.Generate("iot")
	return &Record{
		Digest: k.Digest(), KeyID: k.ID(), Namespace: "iot", KeyGroup: "devices", Application: "acme", APIKey: "acme-key",
		ExternalID: "70B3D57ED0001234", Scopes: []string{"read", "write"}, State: StateActive,
		ExpiresAt:    time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC),
		SourceRanges: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")},
	}
}

// rotated is a record during a rotation's overlap.
func rotated() *Record {
	r := sample()
	prev, _ := keys.Generate("iot")
	r.IssuedAt = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r.Previous = &Previous{Digest: prev.Digest(), KeyID: prev.ID(), EndsAt: r.IssuedAt.Add(24 * time.Hour)}
	r.Rotating = true
	r.AddRequest("2026-11-30T12:00:00Z")
	return r
}

// TestPreviousEnd: the previous key stops at the end of its overlap, or at
// the APIKey's own end if that comes first (an expiresAt moved earlier
// after the rotation); a record without one has none.
func TestPreviousEnd(t *testing.T) {
	overlapEnd := rotated().Previous.EndsAt
	tests := []struct {
		name    string
		expires time.Time
		want    time.Time
	}{
		{"no expiry", time.Time{}, overlapEnd},
		{"expiry after the overlap", overlapEnd.Add(time.Hour), overlapEnd},
		{"expiry within the overlap", overlapEnd.Add(-time.Hour), overlapEnd.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rotated()
			r.ExpiresAt = tt.expires
			if got := r.PreviousEnd(); !got.Equal(tt.want) {
				t.Errorf("PreviousEnd() = %s, want %s", got, tt.want)
			}
		})
	}
	if got := sample().PreviousEnd(); !got.IsZero() {
		t.Errorf("PreviousEnd() of a record without a previous key = %s, want zero", got)
	}
}

// TestPreviousVerifierReadsRotatedRecord: a verifier that knows nothing of
// rotation (it reads only the data keys it knows, as d85117a's does) still
// decodes a record in overlap, as the current key.
func TestPreviousVerifierReadsRotatedRecord(t *testing.T) {
	r := rotated()
	d := r.SecretData()
	for _, k := range []string{DataIssuedAt, DataPreviousDigest, DataPreviousKeyID, DataPreviousEndsAt, DataRotating, DataRotateRequests} {
		if _, ok := d[k]; !ok {
			t.Fatalf("rotated record lacks %s", k)
		}
	}
	old := map[string][]byte{}
	for _, k := range []string{DataDigest, DataKeyID, DataNamespace, DataKeyGroup, DataApplication, DataAPIKey, DataExternalID, DataScopes, DataState, DataExpiresAt, DataSourceRanges} {
		old[k] = d[k]
	}
	got, err := Decode(old)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != r.Digest || got.KeyID != r.KeyID || got.Previous != nil {
		t.Errorf("an old verifier's view: %+v", got)
	}
}

func TestRotateRequests(t *testing.T) {
	r := sample()
	for i := range MaxRotateRequests + 2 {
		r.AddRequest(fmt.Sprint("v", i))
		r.AddRequest(fmt.Sprint("v", i)) // the same value again is not a second entry
	}
	if len(r.RotateRequests) != MaxRotateRequests {
		t.Fatalf("%d requests remembered, want %d", len(r.RotateRequests), MaxRotateRequests)
	}
	if r.Handled("v0") || !r.Handled("v2") || !r.Handled(fmt.Sprint("v", MaxRotateRequests+1)) {
		t.Errorf("remembered %v", r.RotateRequests)
	}
	if h := RequestHash(strings.Repeat("x", 4096)); len(h) != 16 {
		t.Errorf("hash %q", h)
	}
}

func bytesOf(m map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, r := range []*Record{sample(), func() *Record {
		r := sample()
		r.ExpiresAt, r.SourceRanges, r.ExternalID = time.Time{}, nil, ""
		return r
	}(), rotated()} {
		got, err := Decode(r.SecretData())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestDecodeRefusesDamage(t *testing.T) {
	tests := []struct {
		name   string
		change func(map[string][]byte)
		field  string
	}{
		{"no digest", func(d map[string][]byte) { delete(d, DataDigest) }, DataDigest},
		{"short digest", func(d map[string][]byte) { d[DataDigest] = d[DataDigest][:10] }, DataDigest},
		{"upper-case digest", func(d map[string][]byte) { d[DataDigest] = []byte(strings.ToUpper(string(d[DataDigest]))) }, DataDigest},
		{"no namespace", func(d map[string][]byte) { delete(d, DataNamespace) }, DataNamespace},
		{"no group", func(d map[string][]byte) { delete(d, DataKeyGroup) }, DataKeyGroup},
		{"unknown state", func(d map[string][]byte) { d[DataState] = []byte("enabled") }, DataState},
		{"bad expiry", func(d map[string][]byte) { d[DataExpiresAt] = []byte("tomorrow") }, DataExpiresAt},
		{"bad range", func(d map[string][]byte) { d[DataSourceRanges] = []byte("203.0.113.0/24,,") }, DataSourceRanges},
		{"bad issue time", func(d map[string][]byte) { d[DataIssuedAt] = []byte("now") }, DataIssuedAt},
		{"previous digest alone", func(d map[string][]byte) { delete(d, DataPreviousKeyID); delete(d, DataPreviousEndsAt) }, DataPreviousKeyID},
		{"previous without its end", func(d map[string][]byte) { delete(d, DataPreviousEndsAt) }, DataPreviousEndsAt},
		{"short previous digest", func(d map[string][]byte) { d[DataPreviousDigest] = d[DataPreviousDigest][:10] }, DataPreviousDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := rotated().SecretData()
			tt.change(d)
			_, err := Decode(d)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("got %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// FuzzDecode feeds arbitrary Secret data to Decode: it never panics, and
// whatever it accepts encodes back to data that decodes to the same record.
func FuzzDecode(f *testing.F) {
	s := sample().Data()
	f.Add(s[DataDigest], s[DataState], s[DataScopes], s[DataExpiresAt], s[DataSourceRanges])
	f.Add("", "active", "", "", "")
	f.Add(s[DataDigest], "revoked", "a,,b", "2027-01-01T00:00:00+02:00", "::ffff:1.2.3.4/120")
	f.Fuzz(func(t *testing.T, digest, state, scopes, expires, ranges string) {
		d := bytesOf(s)
		d[DataDigest], d[DataState], d[DataScopes], d[DataExpiresAt], d[DataSourceRanges] = []byte(digest), []byte(state), []byte(scopes), []byte(expires), []byte(ranges)
		r, err := Decode(d)
		if err != nil {
			if strings.Contains(err.Error(), digest) && len(digest) > 8 {
				t.Fatalf("the error repeats the digest: %v", err)
			}
			return
		}
		again, err := Decode(r.SecretData())
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", r, err)
		}
		if !again.ExpiresAt.Equal(r.ExpiresAt) || again.Digest != r.Digest || again.State != r.State || len(again.SourceRanges) != len(r.SourceRanges) {
			t.Fatalf("round trip changed the record: %+v -> %+v", r, again)
		}
	})
}
