package registry

import (
	"testing"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validFlowSchema() *flowcontrolv1.FlowSchema {
	fs := &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: "probes"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "global-default"},
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "alice"}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
					Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}, Namespaces: []string{"default"},
				}},
				NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
			}},
		},
	}
	flowSchemaResource.PrepareForCreate(fs)
	return fs
}

func TestValidateFlowSchema(t *testing.T) {
	type fs = flowcontrolv1.FlowSchema
	if got := validFlowSchema().Spec.MatchingPrecedence; got != 1000 {
		t.Errorf("default matchingPrecedence = %d, want 1000", got)
	}
	rule := func(f func(*flowcontrolv1.PolicyRulesWithSubjects)) func(*fs) {
		return func(s *fs) { f(&s.Spec.Rules[0]) }
	}
	runValidation(t, flowSchemaResource, validFlowSchema, []validationCase[*fs]{
		{name: "valid"},
		{"precedence too high", func(s *fs) { s.Spec.MatchingPrecedence = 10001 }, []string{errKey(invalid, "spec.matchingPrecedence")}},
		{"precedence of exempt", func(s *fs) { s.Spec.MatchingPrecedence = 1 }, []string{errKey(invalid, "spec.matchingPrecedence")}},
		{"no priority level", func(s *fs) { s.Spec.PriorityLevelConfiguration.Name = "" },
			[]string{errKey(required, "spec.priorityLevelConfiguration.name")}},
		{"bad distinguisher", func(s *fs) { s.Spec.DistinguisherMethod.Type = "ByColor" },
			[]string{errKey(notSupported, "spec.distinguisherMethod.type")}},
		{"no subjects", rule(func(r *flowcontrolv1.PolicyRulesWithSubjects) { r.Subjects = nil }),
			[]string{errKey(required, "spec.rules[0].subjects")}},
		{"no rules", rule(func(r *flowcontrolv1.PolicyRulesWithSubjects) { r.ResourceRules, r.NonResourceRules = nil, nil }),
			[]string{errKey(required, "spec.rules[0]")}},
		{"user subject with group", rule(func(r *flowcontrolv1.PolicyRulesWithSubjects) {
			r.Subjects[0].Group = &flowcontrolv1.GroupSubject{Name: "g"}
		}), []string{errKey(forbidden, "spec.rules[0].subjects[0].group")}},
		{"service account without namespace", rule(func(r *flowcontrolv1.PolicyRulesWithSubjects) {
			r.Subjects[0] = flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindServiceAccount,
				ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Name: "default"}}
		}), []string{errKey(required, "spec.rules[0].subjects[0].serviceAccount.namespace")}},
		{"bad verb", rule(func(r *flowcontrolv1.PolicyRulesWithSubjects) { r.ResourceRules[0].Verbs = []string{"fly"} }),
			[]string{errKey(notSupported, "spec.rules[0].resourceRules[0].verbs")}},
		{"star and more", rule(func(r *flowcontrolv1.PolicyRulesWithSubjects) { r.ResourceRules[0].Resources = []string{"*", "pods"} }),
			[]string{errKey(invalid, "spec.rules[0].resourceRules[0].resources")}},
		{"namespaced without namespaces", rule(func(r *flowcontrolv1.PolicyRulesWithSubjects) { r.ResourceRules[0].Namespaces = nil }),
			[]string{errKey(required, "spec.rules[0].resourceRules[0].namespaces")}},
		{"bad namespace", rule(func(r *flowcontrolv1.PolicyRulesWithSubjects) { r.ResourceRules[0].Namespaces = []string{"Bad_NS"} }),
			[]string{errKey(invalid, "spec.rules[0].resourceRules[0].namespaces[0]")}},
		{"no urls", rule(func(r *flowcontrolv1.PolicyRulesWithSubjects) { r.NonResourceRules[0].NonResourceURLs = nil }),
			[]string{errKey(required, "spec.rules[0].nonResourceRules[0].nonResourceURLs")}},
	})
	runUpdate(t, flowSchemaResource, true, validFlowSchema, []validationCase[*fs]{
		{"condition without type", func(s *fs) {
			s.Status.Conditions = []flowcontrolv1.FlowSchemaCondition{{Status: flowcontrolv1.ConditionFalse}}
		}, []string{errKey(required, "status.conditions[0].type")}},
	})
}

func validPriorityLevel() *flowcontrolv1.PriorityLevelConfiguration {
	pl := &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "batch"},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				LimitResponse: flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeQueue, Queuing: &flowcontrolv1.QueuingConfiguration{}},
			},
		},
	}
	priorityLevelResource.PrepareForCreate(pl)
	return pl
}

func TestValidatePriorityLevel(t *testing.T) {
	type pl = flowcontrolv1.PriorityLevelConfiguration
	l := validPriorityLevel().Spec.Limited
	if *l.NominalConcurrencyShares != 30 || *l.LendablePercent != 0 || *l.LimitResponse.Queuing != (flowcontrolv1.QueuingConfiguration{Queues: 64, HandSize: 8, QueueLengthLimit: 50}) {
		t.Errorf("defaults = %+v, queuing %+v", l, l.LimitResponse.Queuing)
	}
	runValidation(t, priorityLevelResource, validPriorityLevel, []validationCase[*pl]{
		{name: "valid"},
		{"exempt type on another name", func(p *pl) {
			p.Spec = flowcontrolv1.PriorityLevelConfigurationSpec{Type: flowcontrolv1.PriorityLevelEnablementExempt}
		}, []string{errKey(invalid, "spec.type")}},
		{"limited named exempt", func(p *pl) { p.Name = "exempt" }, []string{errKey(invalid, "spec.type")}},
		{"bad type", func(p *pl) { p.Spec.Type = "Sometimes" }, []string{errKey(notSupported, "spec.type")}},
		{"limited without settings", func(p *pl) { p.Spec.Limited = nil }, []string{errKey(required, "spec.limited")}},
		{"limited with exempt", func(p *pl) { p.Spec.Exempt = &flowcontrolv1.ExemptPriorityLevelConfiguration{} },
			[]string{errKey(forbidden, "spec.exempt")}},
		{"negative shares", func(p *pl) { p.Spec.Limited.NominalConcurrencyShares = ptrTo(int32(-1)) },
			[]string{errKey(invalid, "spec.limited.nominalConcurrencyShares")}},
		{"lend too much", func(p *pl) { p.Spec.Limited.LendablePercent = ptrTo(int32(101)) },
			[]string{errKey(invalid, "spec.limited.lendablePercent")}},
		{"reject with queuing", func(p *pl) { p.Spec.Limited.LimitResponse.Type = flowcontrolv1.LimitResponseTypeReject },
			[]string{errKey(forbidden, "spec.limited.limitResponse.queuing")}},
		{"queue without queuing", func(p *pl) { p.Spec.Limited.LimitResponse.Queuing = nil },
			[]string{errKey(required, "spec.limited.limitResponse.queuing")}},
		{"hand bigger than deck", func(p *pl) { p.Spec.Limited.LimitResponse.Queuing.HandSize = 65 },
			[]string{errKey(invalid, "spec.limited.limitResponse.queuing.handSize")}},
		{"too much entropy", func(p *pl) {
			p.Spec.Limited.LimitResponse.Queuing.Queues = 1 << 20
			p.Spec.Limited.LimitResponse.Queuing.HandSize = 4
		}, []string{errKey(invalid, "spec.limited.limitResponse.queuing.handSize")}},
		{"zero queue length", func(p *pl) { p.Spec.Limited.LimitResponse.Queuing.QueueLengthLimit = -1 },
			[]string{errKey(invalid, "spec.limited.limitResponse.queuing.queueLengthLimit")}},
	})
	runUpdate(t, priorityLevelResource, true, validPriorityLevel, []validationCase[*pl]{
		{"condition without type", func(p *pl) {
			p.Status.Conditions = []flowcontrolv1.PriorityLevelConfigurationCondition{{Status: flowcontrolv1.ConditionTrue}}
		}, []string{errKey(required, "status.conditions[0].type")}},
	})
}
