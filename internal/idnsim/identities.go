package idnsim

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// publicIdentity is the PublicIdentity schema (v3). email, status and
// identityState are nullable; manager is a nullable IdentityReference.
type publicIdentity struct {
	ID            string         `json:"id"`
	Name          string         `json:"name"`
	Alias         string         `json:"alias"`
	Email         *string        `json:"email"`
	Status        *string        `json:"status"`
	IdentityState *string        `json:"identityState"`
	Manager       *identityRef   `json:"manager"`
	Attributes    []publicAttrib `json:"attributes"`
}

type identityRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

type publicAttrib struct {
	Key   string  `json:"key"`
	Name  string  `json:"name"`
	Value *string `json:"value"`
}

func strOrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// publicIdentityFields are the filterable fields and operators the spec
// documents for getPublicIdentities.
var publicIdentityFields = map[string]map[string]bool{
	"id":        {"eq": true, "in": true},
	"alias":     {"eq": true, "sw": true},
	"email":     {"eq": true, "sw": true},
	"firstname": {"eq": true, "sw": true},
	"lastname":  {"eq": true, "sw": true},
}

// checkIdentityFilter walks a parsed filter and refuses fields and operators
// the endpoint does not document. Unlike the PAT endpoint, composites are
// accepted: the endpoint is backed by the general search service.
func checkIdentityFilter(n Node) error {
	switch n := n.(type) {
	case *Logical:
		if err := checkIdentityFilter(n.L); err != nil {
			return err
		}
		return checkIdentityFilter(n.R)
	case *Not:
		return checkIdentityFilter(n.X)
	case *Compare:
		ops, ok := publicIdentityFields[n.Field]
		if !ok {
			return fmt.Errorf("filtering on field %q is not supported; supported: id (eq, in), alias, email, firstname, lastname (eq, sw)", n.Field)
		}
		if !ops[n.Op] {
			return fmt.Errorf("operator %q is not supported for field %q", n.Op, n.Field)
		}
		for _, v := range n.Values {
			if v.Kind != KindString {
				return fmt.Errorf("field %q compares with quoted strings, got %s %s", n.Field, v.Kind, v.quoted())
			}
		}
	}
	return nil
}

func identityField(id *Identity) func(string) (Value, bool) {
	first, last, _ := strings.Cut(id.Name, " ")
	return func(field string) (Value, bool) {
		switch field {
		case "id":
			return StringValue(id.ID), true
		case "alias":
			return StringValue(id.Alias), true
		case "email":
			if id.Email == "" {
				return NullValue(), true
			}
			return StringValue(id.Email), true
		case "firstname":
			return StringValue(first), true
		case "lastname":
			if last == "" {
				return NullValue(), true
			}
			return StringValue(last), true
		}
		return Value{}, false
	}
}

// listPublicIdentities is GET /v3/public-identities with filters, limit
// (default and maximum 250), offset, count (X-Total-Count), sorters (name,
// -name; default by id) and add-core-filters (drops identities without email).
// Any authenticated caller may use it (the spec's scope is sp:scopes:default).
func (s *Sim) listPublicIdentities(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset := 250, 0
	if v, ok := queryValue(q, "limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 250 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be an integer between 0 and 250, got %q", v))
			return
		}
		limit = n
	}
	if v, ok := queryValue(q, "offset"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("offset must be a non-negative integer, got %q", v))
			return
		}
		offset = n
	}
	count := false
	if v, ok := queryValue(q, "count"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("count must be true or false, got %q", v))
			return
		}
		count = b
	}
	core := false
	if v, ok := queryValue(q, "add-core-filters"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("add-core-filters must be true or false, got %q", v))
			return
		}
		core = b
	}
	var filter Node
	if f := q.Get("filters"); strings.TrimSpace(f) != "" {
		n, err := ParseFilter(f)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid filter %q: %v", f, err))
			return
		}
		if err := checkIdentityFilter(n); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		filter = n
	}
	sorter := q.Get("sorters")
	if sorter != "" && sorter != "name" && sorter != "-name" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("sorting on %q is not supported; supported: name", sorter))
		return
	}

	s.mu.RLock()
	var matched []*Identity
	for _, id := range s.pop.identities {
		if core && id.Email == "" {
			continue
		}
		if filter != nil && !filter.Eval(identityField(id)) {
			continue
		}
		matched = append(matched, id)
	}
	sort.Slice(matched, func(i, j int) bool {
		a, b := matched[i], matched[j]
		switch sorter {
		case "name":
			if a.Name != b.Name {
				return a.Name < b.Name
			}
		case "-name":
			if a.Name != b.Name {
				return a.Name > b.Name
			}
		}
		return a.ID < b.ID
	})
	total := len(matched)
	page := matched[min(offset, total):min(offset+limit, total)]
	out := make([]publicIdentity, 0, len(page))
	for _, id := range page {
		out = append(out, s.toPublic(id))
	}
	s.mu.RUnlock()

	if count {
		w.Header().Set("X-Total-Count", strconv.Itoa(total))
	}
	writeJSON(w, http.StatusOK, out)
}

// toPublic renders an identity. Callers hold s.mu.
func (s *Sim) toPublic(id *Identity) publicIdentity {
	p := publicIdentity{
		ID: id.ID, Name: id.Name, Alias: id.Alias,
		Email: strOrNull(id.Email), Status: strOrNull(id.Status), IdentityState: strOrNull(id.IdentityState),
		Attributes: make([]publicAttrib, 0, len(id.Attributes)),
	}
	if id.ManagerID != "" {
		ref := &identityRef{Type: "IDENTITY", ID: id.ManagerID}
		if m, ok := s.pop.identities[id.ManagerID]; ok {
			ref.Name = m.Name
		}
		p.Manager = ref
	}
	for _, a := range id.Attributes {
		p.Attributes = append(p.Attributes, publicAttrib{Key: a.Key, Name: a.Name, Value: strOrNull(a.Value)})
	}
	return p
}
