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

package cmd

import (
	"io"
	"os"
	"strings"
	"testing"
)

// TestVerifierKeyGroupsOnce: two --key-groups flags (a chart's value and
// an extra argument, say) are refused, not one silently replacing the
// other, before the verifier connects to anything.
func TestVerifierKeyGroupsOnce(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	code := Verifier([]string{"--key-groups=billing/invoices", "--key-groups=iot/devices"})
	os.Stderr = stderr
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if code != 2 || !strings.Contains(string(out), "--key-groups") || !strings.Contains(string(out), "more than once") {
		t.Errorf("keyward verifier with --key-groups twice: exit %d, stderr %q; want exit 2 and an error naming --key-groups", code, out)
	}
}
