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

// Package keys defines the format of keyward API keys: how they are
// generated, how their structure and checksum are validated, and how they
// are hashed for storage.
//
// A key has the form
//
//	<prefix>_<random><checksum>
//
// where prefix matches [a-z][a-z0-9]{1,7}, random is 30 characters drawn
// uniformly from the base62 alphabet 0-9A-Za-z (about 178 bits of entropy),
// and checksum is the CRC-32 (IEEE) of "<prefix>_<random>" written as 6
// base62 digits, most significant first, left-padded with '0'. For example:
//
//	iot_7Hq2bV0xkq5d3TzN1uWcYpR8sLmE4f1Seatx
//
// The checksum lets a verifier reject mistyped or made-up keys cheaply,
// before any hashing or storage lookup, and lets secret scanners reduce
// false positives.
//
// The non-secret key ID is the prefix, the underscore and the first four
// random characters ("iot_7Hq2"); it identifies a key in logs and in the API
// without revealing it. Only the SHA-256 digest of the full key is stored.
package keys
