// The certify page's logic: the page of Alibaba's mini-program guide
// (https://help.aliyun.com/document_detail/144545.html) (init -> open-certify -> verdict), done properly.
//
// createCertifyPage(my, options) returns the object Page() takes. It is a factory over `my` so
// Node can load it with a simulated `my` (tests/clients/node/harness.js); certify.js does
// `Page(createCertifyPage(my, { config, getApp }))`. Plain ES2017 and CommonJS, no dependencies.
//
// What "properly" means, next to the guide:
// * the ID number and name come from the inputs; when both are empty the guide's own placeholders
//   are sent (the demo backend's identity_loader replaces them in sandbox mode);
// * the verifyResult is never trusted: the page posts it to {baseUrl}/result with the certifyId it
//   holds (`result` may be null) and shows the server's verdict, which comes from Alibaba's
//   DescribeFaceVerify, not from the client (the guide: "由于前端数据是可以修改的...");
// * every resultStatus (9000, 6001, 6002, 4000 with its errorCode, unknown) has a message, and so
//   have HTTP errors (the server's error.message) and network failures;
// * when the server answers retryable: true, a "重新认证" button starts over with a new init
//   (a certifyId is single-use), and "刷新结果" re-asks the server while the verdict is pending.
'use strict';

// The guide's own placeholder identity, sent when the inputs are empty.
const PLACEHOLDER_CERT_NO = '1******************9';
const PLACEHOLDER_CERT_NAME = '张先生';

// Client-side texts for what open-certify reported. They are shown while the server confirms;
// the verdict the user is left with is always the server's `message`.
const STATUS_MESSAGES = {
  '9000': '认证完成，正在确认结果…',
  '6001': '认证已取消',
  '6002': '网络异常，请检查网络后重试',
  '4000': '业务异常',
};
// resultStatus 4000's errorCode values (the guide says the list is partial).
const ERROR_CODE_MESSAGES = {
  UNKNOWN_ERROR: '未知异常',
  SYSTEM_ERROR: '系统异常',
  USER_IS_NOT_CERTIFY: '用户未认证',
};
const NETWORK_ERROR_TITLE = '网络错误';
const NETWORK_ERROR_TEXT = '请检查网络连接';
const TERMINAL = ['passed', 'failed', 'expired', 'init_failed'];

// The user-facing text for a verifyResult, defensive about every part being missing.
function clientMessage(verifyResult) {
  const status = resultStatusOf(verifyResult);
  const result = verifyResult && typeof verifyResult.result === 'object' ? verifyResult.result : null;
  const errorCode = result && typeof result.errorCode === 'string' ? result.errorCode : '';
  if (status === '4000') {
    if (ERROR_CODE_MESSAGES[errorCode]) return `业务异常：${ERROR_CODE_MESSAGES[errorCode]}`;
    return errorCode ? `业务异常（${errorCode}）` : STATUS_MESSAGES['4000'];
  }
  if (STATUS_MESSAGES[status]) return STATUS_MESSAGES[status];
  return `认证状态未知（${status || '无'}），正在确认结果…`;
}

function resultStatusOf(verifyResult) {
  if (!verifyResult || verifyResult.resultStatus === undefined || verifyResult.resultStatus === null) {
    return '';
  }
  return String(verifyResult.resultStatus);
}

// Only the documented fields of `result`, or null: never forward whatever else a client got.
function cleanResult(result) {
  if (!result || typeof result !== 'object') return null;
  const clean = {};
  if (typeof result.certifyId === 'string') clean.certifyId = result.certifyId;
  if (typeof result.errorCode === 'string') clean.errorCode = result.errorCode;
  return clean;
}

function verdictTitle(verdict) {
  if (verdict.passed === true || verdict.status === 'passed') return '认证通过';
  if (verdict.status === 'failed') return '认证未通过';
  return '认证未完成';
}

function errorText(data, status) {
  if (data && typeof data === 'object' && data.error && typeof data.error.message === 'string') {
    return data.error.message;
  }
  return `服务暂时不可用（HTTP ${status}）`;
}

function parseBody(data) {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data);
  } catch (e) {
    return data;
  }
}

function createCertifyPage(my, options) {
  const opts = options || {};
  const config = Object.assign({ baseUrl: '', returnUrl: null, timeout: 15000 }, opts.config || {});
  /* global getApp */
  const appGetter = opts.getApp || (typeof getApp === 'function' ? getApp : () => null);

  function authHeaders() {
    const app = appGetter();
    const token = app && app.globalData ? app.globalData.token : null;
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    return headers;
  }

  // my.request as a promise of {status, data} or {networkError}. It never rejects.
  // Clients differ on HTTP errors: some call success with the status, some call fail with
  // error 19 and the status/data; both become {status, data} here.
  function api(method, path, data) {
    return new Promise((resolve) => {
      const req = {
        url: config.baseUrl + path,
        method,
        headers: authHeaders(),
        dataType: 'json',
        timeout: config.timeout,
        success: (res) => {
          resolve({ status: res.statusCode || res.status, data: parseBody(res.data) });
        },
        fail: (err) => {
          const status = err && (err.statusCode || err.status);
          if (status) resolve({ status, data: parseBody(err.data) });
          else resolve({ networkError: true, error: err });
        },
      };
      if (data !== undefined) req.data = data;
      my.request(req);
    });
  }

  return {
    data: {
      certName: '',
      certNo: '',
      // idle | initiating | verifying | confirming | done | error
      phase: 'idle',
      busy: false,
      certifyId: '',
      // what open-certify reported, as text (never the verdict)
      notice: '',
      // the server's answer to /result: {certifyId, status, passed, subCode, message, retryable, clientStatus}
      verdict: null,
      errorMessage: '',
      canRetry: false,
      canRefresh: false,
    },

    onNameInput(e) {
      this.setData({ certName: e.detail.value });
    },

    onCertNoInput(e) {
      this.setData({ certNo: e.detail.value });
    },

    // The guide's entry point name; the button calls startCertify.
    makeRequest() {
      return this.startCertify();
    },

    // "重新认证": a certifyId is single-use, so a retry is a new init.
    retry() {
      return this.startCertify();
    },

    async startCertify() {
      if (this.data.busy) return;
      this._claim = null;
      this.setData({
        busy: true,
        phase: 'initiating',
        certifyId: '',
        notice: '',
        verdict: null,
        errorMessage: '',
        canRetry: false,
        canRefresh: false,
      });
      const info = await this.fetchCertifyInfo();
      if (!info) return;
      this.setData({ certifyId: info.certifyId, phase: 'verifying' });
      const verifyResult = await new Promise((resolve) => {
        this.startAPVerify({ certifyId: info.certifyId, url: info.certifyUrl }, resolve);
      });
      await this.handleVerifyResult(verifyResult);
    },

    // POST {baseUrl}/init. Resolves {certifyId, certifyUrl} or null (the error is already shown).
    // certifyUrl is kept out of page data: it is single-use and lets whoever holds it finish.
    async fetchCertifyInfo() {
      const certNo = (this.data.certNo || '').trim();
      const certName = (this.data.certName || '').trim();
      const serviceParameters = {
        certNo: certNo || PLACEHOLDER_CERT_NO,
        certName: certName || PLACEHOLDER_CERT_NAME,
      };
      if (config.returnUrl) serviceParameters.returnUrl = config.returnUrl;
      const res = await api('POST', '/init', { serviceParameters });
      if (res.networkError) {
        this.showError(NETWORK_ERROR_TITLE, NETWORK_ERROR_TEXT, { canRetry: true });
        return null;
      }
      const data = res.data;
      if (res.status === 200 && data && typeof data.certifyId === 'string' && typeof data.certifyUrl === 'string') {
        return { certifyId: data.certifyId, certifyUrl: data.certifyUrl };
      }
      const message = res.status === 200 ? '服务端返回的数据不完整' : errorText(data, res.status);
      this.showError('认证发起失败', message, { canRetry: res.status === 200 || res.status >= 500 });
      return null;
    },

    // Alipay's open capability: opens Alibaba's certify page; `callback` gets the verifyResult.
    startAPVerify(params, callback) {
      my.call(
        'startBizService',
        {
          name: 'open-certify',
          param: JSON.stringify(params),
        },
        callback,
      );
    },

    // What to do with open-certify's verifyResult: tell the user what the client saw, then let
    // the server decide.
    async handleVerifyResult(verifyResult) {
      const status = resultStatusOf(verifyResult);
      if (status === '6001') {
        // 用户主动取消: a weak hint, as the guide suggests.
        my.showToast({ content: STATUS_MESSAGES['6001'], type: 'none', duration: 2000 });
      }
      if (!status) {
        // No resultStatus at all (old Alipay client without startBizService, or a broken
        // callback): nothing to report, so ask the server where the record stands.
        this.setData({ phase: 'confirming', notice: clientMessage(verifyResult) });
        await this.refreshResult();
        return;
      }
      this._claim = {
        // the certifyId this page holds: result may be null, and a client echo proves nothing
        certifyId: this.data.certifyId,
        resultStatus: status,
        result: cleanResult(verifyResult && verifyResult.result),
      };
      this.setData({ phase: 'confirming', notice: clientMessage(verifyResult) });
      await this.submitClaim();
    },

    // POST {baseUrl}/result with the pending claim; on success the claim is delivered.
    async submitClaim() {
      const claim = this._claim;
      this.setData({ busy: true, errorMessage: '' });
      const res = await api('POST', '/result', claim);
      if (this.showServerAnswer(res, claim.resultStatus !== '6001')) this._claim = null;
    },

    // "刷新结果": re-send an undelivered claim, else GET {baseUrl}/result/<certifyId>.
    async refreshResult() {
      if (this._claim) return this.submitClaim();
      const certifyId = this.data.certifyId;
      if (!certifyId) return;
      this.setData({ busy: true, errorMessage: '' });
      const res = await api('GET', `/result/${encodeURIComponent(certifyId)}`);
      this.showServerAnswer(res, true);
    },

    // Shows the verdict (or the error) from a /result answer. True when it was a verdict.
    showServerAnswer(res, alertVerdict) {
      if (res.networkError) {
        // The record is kept server-side: the claim can be sent again.
        this.showError(NETWORK_ERROR_TITLE, NETWORK_ERROR_TEXT, { canRefresh: true });
        return false;
      }
      const data = res.data;
      if (res.status !== 200 || !data || typeof data.status !== 'string') {
        const message = res.status === 200 ? '服务端返回的数据不完整' : errorText(data, res.status);
        this.showError('查询结果失败', message, { canRefresh: res.status === 200 || res.status >= 500 });
        return false;
      }
      const verdict = {
        certifyId: data.certifyId,
        status: data.status,
        passed: data.passed === true,
        subCode: data.subCode === undefined ? null : data.subCode,
        message: typeof data.message === 'string' && data.message ? data.message : data.status,
        retryable: data.retryable === true,
        clientStatus: data.clientStatus === undefined ? null : data.clientStatus,
      };
      const terminal = TERMINAL.indexOf(verdict.status) >= 0;
      this.setData({
        busy: false,
        phase: 'done',
        verdict,
        canRetry: verdict.retryable && !verdict.passed,
        canRefresh: !terminal,
      });
      if (alertVerdict) {
        my.alert({ title: verdictTitle(verdict), content: verdict.message, buttonText: '确定' });
      }
      return true;
    },

    showError(title, message, flags) {
      this.setData(
        Object.assign({ busy: false, phase: 'error', errorMessage: message, canRetry: false, canRefresh: false }, flags),
      );
      my.alert({ title, content: message, buttonText: '确定' });
    },
  };
}

module.exports = {
  createCertifyPage,
  clientMessage,
  PLACEHOLDER_CERT_NO,
  PLACEHOLDER_CERT_NAME,
};
