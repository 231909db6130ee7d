package httpapi

import (
	"encoding/json"
	"net/http"

	"golang.org/x/text/language"

	"secbuy/proto/outcome"
)

// words are what a person reads for each reason, in English (the "detail" every reply has
// always carried) and Chinese (the original system's language). This file is the only
// place that makes them; everything else passes outcome.Reason values.
var words = map[outcome.Reason]struct{ en, zh string }{
	outcome.Reason_REASON_UNSPECIFIED:  {"refused", "请求被拒绝"},
	outcome.Reason_INVALID_INPUT:       {"bad input", "输入有误"},
	outcome.Reason_COMMODITY_NOT_FOUND: {"commodity not found", "商品不存在"},
	outcome.Reason_SOLD_OUT:            {"sold out", "已售罄"},
	outcome.Reason_NOT_STARTED:         {"not started", "尚未开始"},
	outcome.Reason_ENDED:               {"ended", "已结束"},
	outcome.Reason_REQUEST_REUSED:      {"request id already used for another purchase", "该请求编号已用于另一次购买"},
	outcome.Reason_ALREADY_BOUGHT:      {"already bought", "您已购买过该商品"},
	outcome.Reason_ORDER_NOT_FOUND:     {"order not found", "订单不存在"},
	outcome.Reason_NOT_YOURS:           {"not your order", "不是您的订单"},
	outcome.Reason_ORDER_PENDING:       {"busy: order pending", "订单处理中"},
	outcome.Reason_ORDER_CANCELLED:     {"order cancelled", "订单已取消"},
	outcome.Reason_PAYMENT_NOT_FOUND:   {"no payment for this order (unknown order, or its payment is not made yet)", "该订单没有支付记录（订单不存在，或支付记录尚未生成）"},
	outcome.Reason_PAYMENT_EXPIRED:     {"payment expired", "支付已超时"},
	outcome.Reason_NO_SALE:             {"no sale for this request id", "该请求编号没有售出记录"},
	outcome.Reason_NOT_GRANTED:         {"sale was not granted: nothing to release", "该次购买未成功，无可退还"},
	outcome.Reason_IN_PROGRESS:         {"already in progress", "您的另一次购买正在处理中"},
	outcome.Reason_BUSY:                {"busy, try again", "系统繁忙，请重试"},
	outcome.Reason_SLOW_DOWN:           {"slow down", "请求过于频繁，请稍后再试"},
	outcome.Reason_UNAUTHENTICATED:     {"missing bearer token", "缺少登录凭证"},
	outcome.Reason_INVALID_TOKEN:       {"invalid or expired token", "登录凭证无效或已过期"},
	outcome.Reason_ADMIN_KEY_REQUIRED:  {"admin key required (X-Admin-Key)", "需要管理员密钥（X-Admin-Key）"},
	outcome.Reason_METHOD_NOT_ALLOWED:  {"method not allowed", "不支持该请求方法"},
	outcome.Reason_BODY_TOO_LARGE:      {"body too large", "请求体过大"},
	outcome.Reason_ROUTE_NOT_FOUND:     {"no such route", "没有该接口"},
	outcome.Reason_INTERNAL:            {"internal error", "内部错误"},
	outcome.Reason_TICKET_REQUIRED:     {"ticket required", "需要购买凭证，请刷新页面后重试"},
	// The causes of INVALID_TOKEN (the reply's "cause").
	outcome.Reason_TOKEN_MALFORMED:       {"malformed token", "登录凭证格式错误"},
	outcome.Reason_TOKEN_UNSIGNED:        {"unsigned token (alg none)", "登录凭证未签名"},
	outcome.Reason_TOKEN_ALG_NOT_ALLOWED: {"token signing algorithm not accepted", "不接受该登录凭证的签名算法"},
	outcome.Reason_TOKEN_KEY_MISMATCH:    {"token algorithm does not fit its key", "登录凭证的签名算法与密钥不符"},
	outcome.Reason_TOKEN_UNKNOWN_KEY:     {"unknown token signing key (kid)", "未知的登录凭证签名密钥"},
	outcome.Reason_TOKEN_BAD_SIGNATURE:   {"bad token signature", "登录凭证签名无效"},
	outcome.Reason_TOKEN_NO_EXPIRY:       {"token has no expiry (exp)", "登录凭证缺少过期时间"},
	outcome.Reason_TOKEN_EXPIRED:         {"token expired", "登录凭证已过期"},
	outcome.Reason_TOKEN_NOT_YET_VALID:   {"token not valid yet (nbf)", "登录凭证尚未生效"},
	outcome.Reason_TOKEN_BAD_ISSUER:      {"wrong token issuer (iss)", "登录凭证签发者不符"},
	outcome.Reason_TOKEN_BAD_AUDIENCE:    {"wrong token audience (aud)", "登录凭证受众不符"},
	outcome.Reason_TOKEN_BAD_SUBJECT:     {"token subject (sub) is not a buyer id", "登录凭证的用户标识无效"},
}

// problemJSON is the "error" object of a failed reply. Detail is English and stable;
// Message is the same in Chinese, present when the request's Accept-Language prefers it.
// Cause, if present, is the finer reason under Reason (why a token is INVALID_TOKEN); the
// words are then the cause's.
type problemJSON struct {
	Code    int    `json:"code"`
	Detail  string `json:"detail"`
	Reason  string `json:"reason"`
	Cause   string `json:"cause,omitempty"`
	Message string `json:"message,omitempty"`
}

// problem renders e for r. Its status is e's code if that is an error status, else its
// reason's. Its detail is e's own (which field was wrong, which method to use) or else the
// reason's words.
func problem(r *http.Request, e *outcome.Error) problemJSON {
	code := int(e.GetCode())
	if code < 400 || code > 599 {
		code = e.GetReason().Status()
	}
	why := e.GetReason()
	p := problemJSON{Code: code, Detail: e.GetDetail(), Reason: why.String()}
	if c := e.GetCause(); c != outcome.Reason_REASON_UNSPECIFIED {
		why, p.Cause = c, c.String()
	}
	w, ok := words[why]
	if !ok {
		w = words[outcome.Reason_REASON_UNSPECIFIED]
	}
	if p.Detail == "" {
		p.Detail = w.en
	}
	if PrefersChinese(r) {
		p.Message = w.zh
		if e.GetDetail() != "" {
			p.Message += "：" + e.GetDetail()
		}
	}
	return p
}

// renderedFailures holds, per language (English, Chinese), the whole body of the failed
// reply of each reason with no detail of its own, as Fail would write it.
var renderedFailures = func() [2]map[outcome.Reason][]byte {
	var out [2]map[outcome.Reason][]byte
	for lang := range out {
		out[lang] = map[outcome.Reason][]byte{}
		for reason := range words {
			e := outcome.Refuse(reason)
			p := problemJSON{Code: int(e.Code), Detail: words[reason].en, Reason: reason.String()}
			if lang == 1 {
				p.Message = words[reason].zh
			}
			b, err := json.Marshal(failure{Error: p})
			if err != nil {
				panic(err) // fixed data: cannot fail
			}
			out[lang][reason] = append(b, '\n')
		}
	}
	return out
}()

// rendered returns the prepared body of e for r, if e is a reason alone with its own
// status.
func rendered(r *http.Request, e *outcome.Error) ([]byte, bool) {
	if e.GetDetail() != "" || e.GetCause() != outcome.Reason_REASON_UNSPECIFIED || int(e.GetCode()) != e.GetReason().Status() {
		return nil, false
	}
	lang := 0
	if PrefersChinese(r) {
		lang = 1
	}
	b, ok := renderedFailures[lang][e.GetReason()]
	return b, ok
}

// Text returns the words for reason in lang ("zh" or "en"): for a page, or a field that
// shows a reason, such as a failed order's.
func Text(reason outcome.Reason, lang string) string {
	w, ok := words[reason]
	if !ok {
		w = words[outcome.Reason_REASON_UNSPECIFIED]
	}
	if lang == "zh" {
		return w.zh
	}
	return w.en
}

// languages are the languages the words come in, English first (the default); Chinese in
// either script gets the (simplified) Chinese words.
var languages = language.NewMatcher([]language.Tag{language.English, language.SimplifiedChinese, language.TraditionalChinese})

// PrefersChinese says whether r's Accept-Language puts Chinese before English: whether
// its refusals carry the Chinese words.
func PrefersChinese(r *http.Request) bool {
	if r == nil {
		return false
	}
	h := r.Header.Get("Accept-Language")
	if h == "" {
		return false
	}
	_, i := language.MatchStrings(languages, h)
	return i > 0
}

// Words returns the words of every reason by its name ("SOLD_OUT"), in English and
// Chinese: what a page shows for a refusal, in the language it is switched to.
func Words() map[string][2]string {
	out := make(map[string][2]string, len(words))
	for reason, w := range words {
		out[reason.String()] = [2]string{w.en, w.zh}
	}
	return out
}
