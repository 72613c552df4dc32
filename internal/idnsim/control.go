package idnsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// serveControl answers the test-only endpoints under ControlPrefix. They need
// no authentication, are not rate limited, and are not logged (so a test's
// assertions about what a client sent are not polluted by the test's own
// set-up calls):
//
//	GET    /__sim/admin          the admin credentials {"clientId","clientSecret"}
//	GET    /__sim/requests       the request log;  DELETE empties it
//	GET    /__sim/faults         active faults and counters;  POST adds one (a Fault
//	                             object, latency as "250ms");  DELETE clears them
//	GET    /__sim/tokens         every token (v2025 shape: null expirationDate kept)
//	POST   /__sim/tokens         add a token: the API token shape plus "secret"
//	DELETE /__sim/tokens/{id}    remove a token out of band
//	POST   /__sim/touch          {"id": "...", "at": "<RFC 3339>"} sets lastUsed
//	GET    /__sim/identities     the identities (PublicIdentity shape plus rights)
//	POST   /__sim/reset          forget log, faults, access tokens and rate windows;
//	                             ?population=true also restores the initial tokens
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, ControlPrefix)
	switch {
	case path == "admin" && r.Method == http.MethodGet:
		a := s.Admin()
		writeJSON(w, http.StatusOK, map[string]string{"clientId": a.ClientID, "clientSecret": a.ClientSecret})
	case path == "requests" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Requests())
	case path == "requests" && r.Method == http.MethodDelete:
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	case path == "faults" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Faults())
	case path == "faults" && r.Method == http.MethodPost:
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.faults.add(f)
		writeJSON(w, http.StatusCreated, f)
	case path == "faults" && r.Method == http.MethodDelete:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case path == "tokens" && r.Method == http.MethodGet:
		s.mu.RLock()
		recs := slices.Clone(s.pop.order)
		s.mu.RUnlock()
		writeTokenList(w, recs, versionV2025, "")
	case path == "tokens" && r.Method == http.MethodPost:
		s.controlAddToken(w, r)
	case strings.HasPrefix(path, "tokens/") && r.Method == http.MethodDelete:
		s.Remove(strings.TrimPrefix(path, "tokens/"))
		w.WriteHeader(http.StatusNoContent)
	case path == "touch" && r.Method == http.MethodPost:
		var req struct {
			ID string `json:"id"`
			At string `json:"at"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "touch: "+err.Error())
			return
		}
		at, err := time.Parse(time.RFC3339Nano, req.At)
		if err != nil {
			writeError(w, http.StatusBadRequest, "touch: at: "+err.Error())
			return
		}
		if _, ok := s.Token(req.ID); !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("touch: no token %q", req.ID))
			return
		}
		s.Touch(req.ID, at)
		w.WriteHeader(http.StatusNoContent)
	case path == "identities" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.controlIdentities())
	case path == "reset" && r.Method == http.MethodPost:
		pop, _ := strconv.ParseBool(r.URL.Query().Get("population"))
		s.Reset(pop)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusNotFound, "no such control endpoint: "+r.Method+" "+r.URL.Path)
	}
}

func (s *Sim) controlAddToken(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	var t pat.Token
	if err := json.Unmarshal(body, &t); err != nil {
		writeError(w, http.StatusBadRequest, "tokens: "+err.Error())
		return
	}
	var extra struct {
		Secret string `json:"secret"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&extra); err != nil {
		writeError(w, http.StatusBadRequest, "tokens: "+err.Error())
		return
	}
	s.Add(t, extra.Secret)
	stored, _ := s.Token(t.ID)
	writeToken(w, http.StatusCreated, &stored, versionV2025)
}

type controlIdentity struct {
	publicIdentity
	OrgAdmin   bool `json:"orgAdmin"`
	SeeManaged bool `json:"seeManaged"`
}

func (s *Sim) controlIdentities() []controlIdentity {
	ids := s.Identities()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]controlIdentity, 0, len(ids))
	for i := range ids {
		out = append(out, controlIdentity{publicIdentity: s.toPublic(&ids[i]), OrgAdmin: ids[i].OrgAdmin, SeeManaged: ids[i].SeeManaged})
	}
	return out
}
