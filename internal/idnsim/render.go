package idnsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// The 401 messages. The spec's only example is the expired one and its 401
// description covers both a missing header and an expired JWT, so both get it;
// a bearer token the simulator never issued (or forgot on reset) gets
// Msg401Invalid, in the same {"error": …} shape.
const (
	Msg401Expired = "JWT validation failed: JWT is expired"
	Msg401Invalid = "JWT validation failed: invalid JWT"
	// Msg429 is the documented 429 message, spaces included.
	Msg429 = " Rate Limit Exceeded "
)

// DetailCode returns the ErrorResponseDto detailCode the simulator uses for a
// status: the spec's examples where it has them, "<code> <text>" otherwise.
func DetailCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "400.1 Bad Request Content"
	case http.StatusForbidden:
		return "403 Forbidden"
	case http.StatusNotFound:
		return "404 Not found"
	case http.StatusInternalServerError:
		return "500.0 Internal Fault"
	}
	return strconv.Itoa(status) + " " + http.StatusText(status)
}

// ErrorMessage is ErrorMessageDto.
type ErrorMessage struct {
	Locale       string `json:"locale"`
	LocaleOrigin string `json:"localeOrigin"`
	Text         string `json:"text"`
}

// ErrorResponse is ErrorResponseDto, the body of 400, 403, 404 and 500.
type ErrorResponse struct {
	DetailCode string         `json:"detailCode"`
	TrackingID string         `json:"trackingId"`
	Messages   []ErrorMessage `json:"messages"`
	Causes     []ErrorMessage `json:"causes"`
}

func newErrorResponse(status int, text string) ErrorResponse {
	return ErrorResponse{
		DetailCode: DetailCode(status),
		TrackingID: randomHex(16),
		Messages:   []ErrorMessage{{Locale: "en-US", LocaleOrigin: "DEFAULT", Text: text}},
		Causes:     []ErrorMessage{},
	}
}

// marshal encodes v without HTML escaping, so that messages read as written
// ("<date-time>", not "\u003cdate-time\u003e").
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		// Only simulator bugs reach here; answer as the spec's 500 would.
		status = http.StatusInternalServerError
		b, _ = marshal(newErrorResponse(status, "encode response: "+err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError answers with an ErrorResponseDto.
func writeError(w http.ResponseWriter, status int, text string) {
	writeJSON(w, status, newErrorResponse(status, text))
}

func writeUnauthorized(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": msg})
}

// writeRateLimited answers 429 with Retry-After in whole seconds, rounded up
// and at least 1, so that a client that waits exactly that long gets through.
func writeRateLimited(w http.ResponseWriter, wait time.Duration) {
	secs := int((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, map[string]string{"message": Msg429})
}

// jsonPlain marks the bytes a JSON string can hold unescaped (printable
// ASCII except '"' and '\\').
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string. Plain ASCII is copied as is;
// anything else goes through encoding/json so that escaping and invalid UTF-8
// are handled exactly as the standard library does.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			q, _ := marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime writes t as "2006-01-02T15:04:05.000Z" (pat.TimeLayout) in UTC,
// digit by digit: time.AppendFormat costs more than the rest of a token.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, pat.TimeLayout)
		return append(b, '"')
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(b, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
}

func appendScopes(b []byte, s pat.Scopes) []byte {
	if s.Null {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range s.Values {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return append(b, ']')
}

func appendOwner(b []byte, o pat.Owner) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, o.Type)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, o.ID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, o.Name)
	return append(b, '}')
}

// neverExpiresFlag is the userAwareTokenNeverExpires a version that has the
// field reports: the stored value, or, for tokens that never set it, whether
// the token never expires (the v2025 spec: "when expirationDate is null … the
// token will never expire (and userAwareTokenNeverExpires will be true)").
func neverExpiresFlag(t *pat.Token) bool {
	if t.UserAwareTokenNeverExpires != nil {
		return *t.UserAwareTokenNeverExpires
	}
	return t.ExpirationDate == nil
}

// appendToken writes GetPersonalAccessTokenResponse in the version's shape:
// v3 omits a missing expirationDate (declared non-nullable there) and has no
// userAwareTokenNeverExpires; v2025 and v1 write expirationDate null for a
// token that never expires and always write userAwareTokenNeverExpires.
func appendToken(b []byte, t *pat.Token, v *apiVersion) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, t.ID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, t.Name)
	b = append(b, `,"scope":`...)
	b = appendScopes(b, t.Scope)
	b = append(b, `,"owner":`...)
	b = appendOwner(b, t.Owner)
	b = append(b, `,"created":`...)
	b = appendTime(b, t.Created)
	b = append(b, `,"lastUsed":`...)
	if t.LastUsed == nil {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, *t.LastUsed)
	}
	b = append(b, `,"managed":`...)
	b = strconv.AppendBool(b, t.Managed)
	b = append(b, `,"accessTokenValiditySeconds":`...)
	b = strconv.AppendInt(b, int64(t.AccessTokenValiditySeconds), 10)
	switch {
	case t.ExpirationDate != nil:
		b = append(b, `,"expirationDate":`...)
		b = appendTime(b, *t.ExpirationDate)
	case v.modern:
		b = append(b, `,"expirationDate":null`...)
	}
	if v.modern && !v.hideAware {
		b = append(b, `,"userAwareTokenNeverExpires":`...)
		b = strconv.AppendBool(b, neverExpiresFlag(t))
	}
	return append(b, '}')
}

// writeTokenList streams a JSON array of tokens through a buffered writer,
// never holding the whole body: each record contributes its cached encoding.
func writeTokenList(w http.ResponseWriter, recs []*record, v *apiVersion, echo string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	_ = bw.WriteByte('[')
	for i, r := range recs {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		b := r.encoded(v)
		if echo != "" {
			// Options.EchoBearer (hostile tests only).
			b = bytes.ReplaceAll(b, []byte(EchoMarker), []byte(echo))
		}
		if _, err := bw.Write(b); err != nil {
			return // the client went away
		}
	}
	_ = bw.WriteByte(']')
	_ = bw.Flush()
}

func writeToken(w http.ResponseWriter, status int, t *pat.Token, v *apiVersion) {
	b := appendToken(nil, t, v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
