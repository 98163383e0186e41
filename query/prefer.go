package query

import (
	"net/http"
	"strings"
	"time"
)

// splitUnquoted splits s at sep, ignoring separators inside quoted-strings (with \-escapes).
func splitUnquoted(s string, sep byte) []string {
	var parts []string
	inQuote, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquote returns the content of an RFC 9110 quoted-string, or s unchanged when not quoted.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	in := s[1 : len(s)-1]
	for i := 0; i < len(in); i++ {
		if in[i] == '\\' && i+1 < len(in) {
			i++
		}
		b.WriteByte(in[i])
	}
	return b.String()
}

// preferences parses the Prefer headers of RFC 7240 into name -> value (names lower-cased,
// values unquoted, parameters after ';' ignored). Per RFC 7240 §2 only the first instance of a
// preference counts, and a preference that cannot be parsed is ignored rather than refused.
func preferences(h http.Header) map[string]string {
	out := map[string]string{}
	for _, line := range h.Values("Prefer") {
		for _, pref := range splitUnquoted(line, ',') {
			head := strings.TrimSpace(splitUnquoted(pref, ';')[0])
			if head == "" {
				continue
			}
			name, value, _ := strings.Cut(head, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if _, seen := out[name]; seen {
				continue
			}
			out[name] = unquote(strings.TrimSpace(value))
		}
	}
	return out
}

// preferredWait reads `Prefer: wait=N` (delta-seconds) and caps it at limit. It returns the
// wait to apply, or 0 when the client asked for no wait or sent a malformed one (RFC 7240
// says to ignore what cannot be understood).
func preferredWait(h http.Header, limit time.Duration) time.Duration {
	v, ok := preferences(h)["wait"]
	if !ok || v == "" {
		return 0
	}
	var secs int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0
		}
		secs = secs*10 + int64(c-'0')
		if time.Duration(secs)*time.Second >= limit {
			return limit
		}
	}
	return time.Duration(secs) * time.Second
}

// waitSeconds renders an applied wait for Preference-Applied, rounding up so that a sub-second
// cap never reads as "wait=0".
func waitSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
