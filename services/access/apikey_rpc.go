package access

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"go.einride.tech/aip/filtering"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func newKey() *accessv1.ApiKey { return &accessv1.ApiKey{} }

func keyName(id string) string { return "apiKeys/" + id }

func keyID(name string) string { return strings.TrimPrefix(name, "apiKeys/") }

// checkSubject: a bound role needs a resource of its collection, any other
// role none.
func checkSubject(v *apierr.Violations, k *accessv1.ApiKey) {
	collection := auth.BoundCollection(k.GetRole())
	switch {
	case collection == "" && k.GetSubject() != "":
		v.Add("api_key.subject", "must be empty for %s, which is bound to no resource", k.GetRole())
	case collection != "" && !strings.HasPrefix(k.GetSubject(), collection+"/"):
		v.Add("api_key.subject", "%s keys are bound to one of %s: give its name, %s/{id}", k.GetRole(), collection, collection)
	}
}

// checkExpiry refuses a key that would be dead on arrival: its expiry is
// judged by the clock that judges it at authentication (the proto rule's
// gt_now reads the wall clock, which the service's may not be), and must be
// a time a timestamp can hold (0001–9999), or the key could not be shown
// over REST and would never expire.
func (s *Service) checkExpiry(v *apierr.Violations, k *accessv1.ApiKey) {
	e := k.GetExpireTime()
	switch {
	case e == nil:
	case e.CheckValid() != nil:
		v.Add("api_key.expire_time", "is not a valid time: it must lie between 0001-01-01 and 9999-12-31 UTC")
	case !e.AsTime().After(s.now()):
		v.Add("api_key.expire_time", "%s is not in the future: the key would never authenticate", e.AsTime().UTC().Format(time.RFC3339))
	}
}

// CreateApiKey implements accessv1.AccessServiceServer.
func (s *Service) CreateApiKey(ctx context.Context, req *accessv1.CreateApiKeyRequest) (*accessv1.CreateApiKeyResponse, error) {
	k := proto.CloneOf(req.GetApiKey())
	var v apierr.Violations
	checkSubject(&v, k)
	s.checkExpiry(&v, k)
	if err := v.Err(); err != nil {
		return nil, err
	}
	id := req.GetApiKeyId()
	if id == "" {
		id = uuid.NewString()
	}
	now := timestamppb.New(s.now())
	k.Name, k.CreateTime, k.RevokeTime, k.LastUsedTime = keyName(id), now, nil, nil
	secret := auth.NewAPIKeySecret(id)

	tx := s.st.Tx()
	tx.MustNotExist(keyKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", k.GetName()))
	if err := tx.Put(keyKey(id), k); err != nil {
		return nil, err
	}
	tx.HSet(keyKey(id), fieldSecretHash, auth.HashAPIKey(secret))
	tx.SetIndex(keyKey(id), keyIndex.Entries(Keyspace, k))
	tx.Emit("api_key.created", k.GetName(), k)
	if _, err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return &accessv1.CreateApiKeyResponse{ApiKey: k, Secret: secret}, nil
}

// GetApiKey implements accessv1.AccessServiceServer.
func (s *Service) GetApiKey(ctx context.Context, req *accessv1.GetApiKeyRequest) (*accessv1.ApiKey, error) {
	k, err := s.loadKey(ctx, keyID(req.GetName()))
	if err != nil {
		return nil, err
	}
	if err := s.withLastUsed(ctx, k); err != nil {
		return nil, err
	}
	return k, nil
}

func (s *Service) loadKey(ctx context.Context, id string) (*accessv1.ApiKey, error) {
	k := newKey()
	if err := s.st.Get(ctx, keyKey(id), k); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(keyName(id))
		}
		return nil, err
	}
	return k, nil
}

// withLastUsed fills in last_used_time, which is kept beside the resource.
func (s *Service) withLastUsed(ctx context.Context, keys ...*accessv1.ApiKey) error {
	redisKeys := make([]string, len(keys))
	for i, k := range keys {
		redisKeys[i] = keyKey(keyID(k.GetName()))
	}
	used, err := s.st.HashFields(ctx, redisKeys, fieldUsed)
	if err != nil {
		return err
	}
	for i, k := range keys {
		if sec, err := strconv.ParseInt(used[i][0], 10, 64); err == nil {
			k.LastUsedTime = timestamppb.New(time.Unix(sec, 0))
		}
	}
	return nil
}

var keyFilter = mustDecls(
	filtering.DeclareStandardFunctions(),
	filtering.DeclareEnumIdent("role", accessv1.Role(0).Type()),
	filtering.DeclareIdent("subject", filtering.TypeString),
	filtering.DeclareIdent("revoked", filtering.TypeString),
)

func mustDecls(opts ...filtering.DeclarationOption) *filtering.Declarations {
	d, err := filtering.NewDeclarations(opts...)
	if err != nil {
		panic(err)
	}
	return d
}

func keyValues(k *accessv1.ApiKey, field string) []string {
	switch field {
	case "role":
		return []string{k.GetRole().String()}
	case "subject":
		return []string{k.GetSubject()}
	case "revoked":
		return []string{strconv.FormatBool(k.GetRevokeTime() != nil)}
	}
	return nil
}

// ListApiKeys implements accessv1.AccessServiceServer.
func (s *Service) ListApiKeys(ctx context.Context, req *accessv1.ListApiKeysRequest) (*accessv1.ListApiKeysResponse, error) {
	page, err := s.keyLister().List(ctx, listing.Request{Method: "ListApiKeys", Filter: req.GetFilter(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	if len(page.Items) > 0 {
		if err := s.withLastUsed(ctx, page.Items...); err != nil {
			return nil, err
		}
	}
	return &accessv1.ListApiKeysResponse{ApiKeys: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// RevokeApiKey implements accessv1.AccessServiceServer.
func (s *Service) RevokeApiKey(ctx context.Context, req *accessv1.RevokeApiKeyRequest) (*accessv1.ApiKey, error) {
	id := keyID(req.GetName())
	k, err := store.Update(ctx, s.st, keyKey(id), req.GetName(), req.GetEtag(), newKey,
		func(k *accessv1.ApiKey, tx *store.Tx) error {
			if k.GetRevokeTime() != nil {
				return nil // revoked already: nothing changes
			}
			k.RevokeTime = timestamppb.New(s.now())
			if err := tx.Put(keyKey(id), k); err != nil {
				return err
			}
			tx.SetIndex(keyKey(id), keyIndex.Entries(Keyspace, k))
			tx.Emit("api_key.revoked", k.GetName(), k)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if err := s.withLastUsed(ctx, k); err != nil {
		return nil, err
	}
	return k, nil
}

// GetPrincipal implements accessv1.AccessServiceServer: the guard has
// authenticated the call (in this service, against this service's own
// store), so the answer is in the context.
func (s *Service) GetPrincipal(ctx context.Context, _ *accessv1.GetPrincipalRequest) (*accessv1.Principal, error) {
	p := auth.FromContext(ctx)
	if p == nil {
		return nil, status.Error(codes.Unauthenticated, "the call carries no credentials")
	}
	return proto.CloneOf(p), nil
}
