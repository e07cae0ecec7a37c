#!/usr/bin/env node
// Runs the example mini-program page (examples/miniprogram/pages/certify/logic.js) end to end
// against a real backend, with a simulated `my`:
//
// * my.request makes real HTTP requests (node:http) to the backend;
// * my.call('startBizService', {name: 'open-certify'}) plays the user on Alibaba's page: it
//   opens the certifyUrl it was given (the sandbox page, on the backend or on the shared sandbox
//   server; the URL carries the session's secret) and POSTs the scenario's outcome to that same
//   URL, then calls back with the verifyResult it returns (optionally with result forced to null,
//   or with a forged resultStatus);
// * my.alert / my.showToast / setData are recorded.
//
// Usage: node harness.js [ORIGIN] [--prefix /alicertify] [--only NAME[,NAME]] [--list]
//   ORIGIN defaults to $ALICERTIFY_BACKEND or http://127.0.0.1:5000 (the `make demo` backend).
//   The demo's POST {ORIGIN}/login gives each scenario its own user (and so its own attempt
//   budget); without it the scenarios run anonymously.
//
// Prints one JSON line per scenario, then "N passed, M failed"; exits 1 on any failure.
// Node 20 built-ins only.
'use strict';

const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const path = require('node:path');

const { createCertifyPage, PLACEHOLDER_CERT_NO, PLACEHOLDER_CERT_NAME } = require(
  path.resolve(__dirname, '../../../examples/miniprogram/pages/certify/logic.js'),
);

// The identity the demo backend's identity_loader supplies in sandbox mode (examples/backend).
const SANDBOX_NAME = process.env.ALICERTIFY_SANDBOX_NAME || '张先生';
const SANDBOX_CERT_NO = process.env.ALICERTIFY_SANDBOX_CERT_NO || '11010519491231002X';
// A valid ID number that is not the sandbox one: the server must refuse it (identity mismatch).
const OTHER_CERT_NO = '110101199003070011';

// ---------------------------------------------------------------------------------------------
// arguments

function parseArgs(argv) {
  const args = { origin: process.env.ALICERTIFY_BACKEND || 'http://127.0.0.1:5000', prefix: '/alicertify' };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--prefix') args.prefix = argv[(i += 1)];
    else if (a === '--only') args.only = argv[(i += 1)].split(',');
    else if (a === '--list') args.list = true;
    else if (a === '-h' || a === '--help') args.help = true;
    else args.origin = a;
  }
  args.origin = args.origin.replace(/\/+$/, '');
  args.prefix = `/${args.prefix.replace(/^\/+|\/+$/g, '')}`;
  return args;
}

// ---------------------------------------------------------------------------------------------
// plain HTTP

function httpRequest(url, { method = 'GET', headers = {}, body, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const payload = body === undefined ? undefined : Buffer.from(body);
    const req = lib.request(
      u,
      {
        method,
        headers: Object.assign({}, headers, payload ? { 'content-length': payload.length } : {}),
        timeout,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return undefined;
  }
}

function isLoopback(url) {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

async function jsonRequest(url, method, body, headers) {
  const res = await httpRequest(url, {
    method,
    headers: Object.assign({ 'content-type': 'application/json', accept: 'application/json' }, headers || {}),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, data: parseJson(res.text), text: res.text };
}

// A loopback port nobody listens on: bind, note the port, close.
function unusedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// the simulated mini-program runtime

function instantiate(definition, rec) {
  const page = {};
  for (const key of Object.keys(definition)) {
    if (key !== 'data') page[key] = definition[key];
  }
  page.data = JSON.parse(JSON.stringify(definition.data || {}));
  page.setData = (patch, cb) => {
    rec.setData.push(JSON.parse(JSON.stringify(patch)));
    Object.assign(page.data, JSON.parse(JSON.stringify(patch)));
    if (typeof cb === 'function') cb();
  };
  if (typeof page.onLoad === 'function') page.onLoad({});
  return page;
}

// `state.outcomes` is consumed by each open-certify call; `state.offline` makes every
// my.request fail like a phone without network; `state.httpErrorsAsFail` reports HTTP >= 400
// through `fail` with error 19 (the other reading of my.request's contract).
function makeMy(ctx, rec, state) {
  return {
    request(opts) {
      const method = (opts.method || 'GET').toUpperCase();
      const headers = Object.assign({}, opts.headers || {});
      let url = opts.url;
      let body;
      if (opts.data !== undefined) {
        if (method === 'GET') {
          url += (url.includes('?') ? '&' : '?') + new URLSearchParams(opts.data).toString();
        } else {
          body = JSON.stringify(opts.data);
        }
      }
      const entry = { method, url, body: opts.data === undefined ? undefined : JSON.parse(JSON.stringify(opts.data)) };
      rec.requests.push(entry);
      const finish = (fn, arg) => {
        setImmediate(() => {
          if (typeof fn === 'function') fn(arg);
          if (typeof opts.complete === 'function') opts.complete(arg);
        });
      };
      if (state.offline) {
        entry.outcome = 'offline';
        finish(opts.fail, { error: 12, errorMessage: '网络出错' });
        return;
      }
      httpRequest(url, { method, headers, body, timeout: opts.timeout || 10000 }).then(
        (res) => {
          entry.status = res.status;
          const data = opts.dataType === 'json' ? parseJson(res.text) : res.text;
          entry.response = data;
          if (state.httpErrorsAsFail && res.status >= 400) {
            finish(opts.fail, { error: 19, errorMessage: 'http status error', status: res.status, data, headers: res.headers });
          } else {
            finish(opts.success, { data, status: res.status, statusCode: res.status, headers: res.headers });
          }
        },
        (err) => {
          entry.outcome = err.code || String(err);
          finish(opts.fail, { error: 12, errorMessage: '网络出错' });
        },
      );
    },

    call(api, params, callback) {
      const call = { api, name: params && params.name };
      rec.calls.push(call);
      const done = (verifyResult) => setImmediate(() => callback(verifyResult));
      if (api !== 'startBizService' || !params || params.name !== 'open-certify') {
        call.error = 'unsupported';
        done({ error: 1, errorMessage: 'unsupported api' });
        return;
      }
      let param;
      try {
        param = JSON.parse(params.param);
      } catch (e) {
        call.error = 'param is not JSON';
        done({ error: 2, errorMessage: 'bad param' });
        return;
      }
      call.certifyId = param.certifyId;
      call.url = param.url;
      const step = state.outcomes.shift();
      if (!step) {
        call.error = 'no scripted outcome left';
        done({ resultStatus: '6001', result: null });
        return;
      }
      (async () => {
        // The user opens the certify page (the sandbox stands in for Alibaba's): the certifyUrl,
        // resolved against the backend (in-process it may be root-relative). Only loopback URLs
        // are fetched: the harness never leaves this machine.
        const pageUrl = typeof param.url === 'string' ? new URL(param.url, ctx.origin) : null;
        if (pageUrl && isLoopback(pageUrl)) {
          try {
            const page = await httpRequest(pageUrl.href);
            call.pageStatus = page.status;
            call.pageShowsCertifyId = page.text.includes(param.certifyId);
          } catch (e) {
            call.pageStatus = `unreachable (${e.code || e.message})`;
          }
        } else {
          call.pageStatus = 'not fetched (certifyUrl is not on this machine)';
        }
        // ... and chooses how it ends, on the same page (the certify id alone opens nothing).
        if (!pageUrl || !isLoopback(pageUrl)) throw new Error(`certifyUrl ${param.url} is not a loopback URL`);
        const res = await jsonRequest(pageUrl.href, 'POST', step.body);
        call.sandboxStatus = res.status;
        let verifyResult = res.status === 200 && res.data ? res.data : { resultStatus: '4000', result: null };
        call.received = JSON.parse(JSON.stringify(verifyResult));
        if (step.nullResult) verifyResult = Object.assign({}, verifyResult, { result: null });
        if (step.resultCertifyId !== undefined && verifyResult.result) {
          verifyResult = Object.assign({}, verifyResult, {
            result: Object.assign({}, verifyResult.result, { certifyId: step.resultCertifyId }),
          });
        }
        if (step.claim !== undefined) verifyResult = Object.assign({}, verifyResult, { resultStatus: step.claim });
        call.delivered = verifyResult;
        done(verifyResult);
      })().catch((e) => {
        call.error = String(e);
        done({ resultStatus: '6002', result: null });
      });
    },

    alert(opts) {
      rec.alerts.push({ title: opts.title, content: opts.content });
      if (typeof opts.success === 'function') setImmediate(opts.success);
    },

    showToast(opts) {
      rec.toasts.push({ content: opts.content, type: opts.type });
      if (typeof opts.success === 'function') setImmediate(opts.success);
    },

    showLoading() {},
    hideLoading() {},
  };
}

// ---------------------------------------------------------------------------------------------
// scenarios

const pass = { body: { outcome: 'pass' } };
const failWith = (subCode) => ({ body: { outcome: 'fail', subCode } });
const cancel = { body: { outcome: 'cancel' } };
const networkError = { body: { outcome: 'network_error' } };
const businessError = (errorCode) => ({ body: { outcome: 'business_error', errorCode } });

// Each scenario: outcomes (one per open-certify call), optional inputs / drive, and `expect`
// returning the server status it wants (string or list) after its own checks through `t`.
const SCENARIOS = [
  {
    name: 'pass_9000',
    outcomes: [pass],
    expect(t) {
      t.claimed('9000');
      t.verdict('passed', { passed: true, subCode: '200' });
      t.alert('认证通过');
      t.noToast();
      t.flags({ canRetry: false, canRefresh: false });
      t.placeholdersSent();
      return 'passed';
    },
  },
  {
    name: 'pass_9000_result_null',
    outcomes: [Object.assign({ nullResult: true }, pass)],
    expect(t) {
      t.claimed('9000', { resultNull: true });
      t.verdict('passed', { passed: true });
      return 'passed';
    },
  },
  {
    name: 'pass_with_typed_identity',
    inputs: { certName: SANDBOX_NAME, certNo: SANDBOX_CERT_NO },
    outcomes: [pass],
    expect(t) {
      t.ok(
        t.initBody() && t.initBody().serviceParameters.certNo === SANDBOX_CERT_NO,
        'the typed ID number is sent instead of the placeholder',
      );
      t.verdict('passed', { passed: true });
      return 'passed';
    },
  },
  {
    // The exact init body of Alibaba's mini-program guide, returnUrl included (the demo allows
    // www.aliyun.com): https://help.aliyun.com/document_detail/144545.html
    name: 'guide_body_with_return_url',
    config: { returnUrl: 'https://www.aliyun.com' },
    outcomes: [pass],
    expect(t) {
      t.placeholdersSent();
      t.equal(t.initBody() && t.initBody().serviceParameters.returnUrl, 'https://www.aliyun.com', 'returnUrl sent');
      t.verdict('passed', { passed: true });
      return 'passed';
    },
  },
  {
    name: 'fail_subcode_201',
    outcomes: [failWith('201')],
    expect(t) {
      t.claimed('4000', { errorCode: 'UNKNOWN_ERROR' });
      t.notice('业务异常：未知异常');
      t.verdict('failed', { passed: false, subCode: '201', retryable: false });
      t.alert('认证未通过', '姓名和身份证不一致');
      t.flags({ canRetry: false, canRefresh: false });
      return 'failed';
    },
  },
  {
    name: 'fail_subcode_205_retryable',
    outcomes: [failWith('205')],
    expect(t) {
      t.verdict('failed', { passed: false, subCode: '205', retryable: true });
      t.flags({ canRetry: true });
      return 'failed';
    },
  },
  {
    name: 'cancel_6001',
    outcomes: [cancel],
    expect(t) {
      t.claimed('6001', { resultNull: true });
      t.toast('认证已取消');
      t.noAlert();
      t.verdict('abandoned', { passed: false, retryable: true });
      t.flags({ canRetry: true, canRefresh: true });
      return 'abandoned';
    },
  },
  {
    name: 'network_6002',
    outcomes: [networkError],
    expect(t) {
      t.claimed('6002', { resultNull: true });
      t.notice('网络异常，请检查网络后重试');
      t.verdict('abandoned', { passed: false, retryable: true });
      t.alert('认证未完成');
      return 'abandoned';
    },
  },
  ...[
    ['UNKNOWN_ERROR', '未知异常'],
    ['SYSTEM_ERROR', '系统异常'],
    ['USER_IS_NOT_CERTIFY', '用户未认证'],
  ].map(([code, text]) => ({
    name: `business_4000_${code}`,
    outcomes: [businessError(code)],
    expect(t) {
      t.claimed('4000', { errorCode: code });
      t.notice(`业务异常：${text}`);
      t.verdict('abandoned', { passed: false });
      t.alert('认证未完成');
      return 'abandoned';
    },
  })),
  {
    name: 'business_4000_undocumented_code',
    outcomes: [businessError('SOMETHING_NEW')],
    expect(t) {
      t.claimed('4000', { errorCode: 'SOMETHING_NEW' });
      t.notice('业务异常（SOMETHING_NEW）');
      return 'abandoned';
    },
  },
  {
    name: 'business_4000_result_null',
    outcomes: [Object.assign({ nullResult: true }, businessError('SYSTEM_ERROR'))],
    expect(t) {
      t.claimed('4000', { resultNull: true });
      t.notice('业务异常');
      t.verdict('abandoned', { passed: false });
      return 'abandoned';
    },
  },
  {
    name: 'unknown_result_status',
    outcomes: [Object.assign({ claim: '7777' }, cancel)],
    expect(t) {
      t.claimed('7777', { resultNull: true });
      t.notice('认证状态未知（7777），正在确认结果…');
      t.ok(t.page.data.verdict && t.page.data.verdict.passed === false, 'not passed');
      t.ok(t.page.data.verdict && t.page.data.verdict.clientStatus === '7777', 'the server recorded the unknown status');
      return ['pending', 'abandoned'];
    },
  },
  {
    name: 'forged_9000_after_fail',
    outcomes: [Object.assign({ claim: '9000' }, failWith('206'))],
    expect(t) {
      t.claimed('9000');
      t.verdict('failed', { passed: false, subCode: '206' });
      t.alert('认证未通过');
      return 'failed';
    },
  },
  {
    name: 'forged_9000_unfinished',
    outcomes: [Object.assign({ claim: '9000', nullResult: true }, cancel)],
    expect(t) {
      t.claimed('9000', { resultNull: true });
      t.ok(t.page.data.verdict && t.page.data.verdict.passed === false, 'a client claim never passes a record');
      t.alert('认证未完成');
      t.flags({ canRefresh: true });
      return ['pending', 'abandoned'];
    },
  },
  {
    // The callback's result.certifyId is client data: the page posts the id it holds.
    name: 'result_certify_id_ignored',
    outcomes: [Object.assign({ resultCertifyId: 'ffffffffffffffffffffffffffffffff' }, pass)],
    expect(t) {
      t.claimed('9000');
      t.verdict('passed', { passed: true });
      return 'passed';
    },
  },
  {
    name: 'retry_after_retryable',
    outcomes: [cancel, pass],
    async drive(page, t) {
      await page.startCertify();
      t.firstCertifyId = page.data.certifyId;
      t.ok(page.data.canRetry === true, 'after cancel the page offers 重新认证 (retryable: true)');
      t.ok(page.data.verdict && page.data.verdict.retryable === true, 'the server said retryable');
      await page.retry();
    },
    expect(t) {
      t.ok(t.page.data.certifyId && t.page.data.certifyId !== t.firstCertifyId, 'the retry used a new init');
      t.equal(t.rec.requests.filter((r) => r.url.endsWith('/init')).length, 2, 'two inits');
      t.verdict('passed', { passed: true });
      t.alert('认证通过');
      return 'passed';
    },
  },
  {
    name: 'result_post_network_failure_then_resend',
    outcomes: [pass],
    async drive(page, t) {
      const original = page.submitClaim;
      let first = true;
      page.submitClaim = async function submitClaim() {
        if (first) {
          first = false;
          t.state.offline = true;
          await original.call(this);
          t.state.offline = false;
          return;
        }
        await original.call(this);
      };
      await page.startCertify();
      t.ok(page.data.phase === 'error' && page.data.canRefresh === true, 'a lost /result post offers 刷新结果');
      t.alert('网络错误', '请检查网络连接');
      await page.refreshResult();
    },
    expect(t) {
      t.equal(t.rec.requests.filter((r) => r.url.endsWith('/result')).length, 2, 'the claim was posted twice');
      t.verdict('passed', { passed: true });
      return 'passed';
    },
  },
  {
    name: 'http_error_identity_mismatch',
    inputs: { certName: SANDBOX_NAME, certNo: OTHER_CERT_NO },
    outcomes: [],
    expect(t) {
      t.httpErrorShown(400, '认证发起失败');
      t.ok(!t.page.data.certifyId && t.rec.calls.length === 0, 'open-certify is not called');
      t.flags({ canRetry: false });
      return null;
    },
  },
  {
    name: 'http_error_via_fail_callback',
    inputs: { certName: SANDBOX_NAME, certNo: OTHER_CERT_NO },
    httpErrorsAsFail: true,
    outcomes: [],
    expect(t) {
      t.httpErrorShown(400, '认证发起失败');
      return null;
    },
  },
  {
    name: 'network_failure_unreachable_port',
    unreachable: true,
    outcomes: [],
    expect(t) {
      t.alert('网络错误', '请检查网络连接');
      t.ok(t.rec.requests.length === 1 && t.rec.requests[0].outcome, 'the request failed at the network level');
      t.ok(t.page.data.phase === 'error' && t.page.data.canRetry === true, 'the page offers a retry');
      t.ok(t.rec.calls.length === 0, 'open-certify is not called');
      return null;
    },
  },
  {
    // Last: it uses up the user's daily attempts (anonymous runs share one budget).
    name: 'http_error_attempts_exhausted',
    outcomes: [],
    async drive(page, t) {
      for (let i = 0; i < 50; i += 1) {
        const before = t.rec.alerts.length;
        // eslint-disable-next-line no-await-in-loop
        const info = await page.fetchCertifyInfo();
        if (!info) {
          t.ok(t.rec.alerts.length === before + 1, 'the refusal is shown');
          return;
        }
      }
    },
    expect(t) {
      t.httpErrorShown(429, '认证发起失败');
      return null;
    },
  },
];

// ---------------------------------------------------------------------------------------------
// checks

class Checks {
  constructor(page, rec, state) {
    this.page = page;
    this.rec = rec;
    this.state = state;
    this.failures = [];
  }

  ok(cond, message) {
    if (!cond) this.failures.push(message);
    return !!cond;
  }

  equal(actual, expected, message) {
    return this.ok(actual === expected, `${message}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }

  initBody() {
    const req = this.rec.requests.find((r) => r.url.endsWith('/init'));
    return req && req.body;
  }

  lastResultPost() {
    const posts = this.rec.requests.filter((r) => r.method === 'POST' && r.url.endsWith('/result'));
    return posts[posts.length - 1];
  }

  claimed(status, { resultNull = false, errorCode } = {}) {
    const post = this.lastResultPost();
    if (!this.ok(post, 'the page posted to /result')) return;
    const body = post.body;
    this.equal(body.resultStatus, status, 'posted resultStatus');
    this.equal(body.certifyId, this.page.data.certifyId, 'posted the certifyId the page holds');
    if (resultNull) this.equal(body.result, null, 'posted result');
    if (errorCode) this.equal(body.result && body.result.errorCode, errorCode, 'posted errorCode');
  }

  verdict(status, fields = {}) {
    const v = this.page.data.verdict;
    if (!this.ok(v, 'the page shows a verdict')) return;
    this.equal(v.status, status, 'verdict status');
    for (const [k, value] of Object.entries(fields)) this.equal(v[k], value, `verdict ${k}`);
    const post = this.lastResultPost();
    if (post && post.response && typeof post.response.message === 'string') {
      this.equal(v.message, post.response.message, "the page shows the server's message");
    }
  }

  notice(text) {
    this.equal(this.page.data.notice, text, 'client-side notice');
  }

  alert(title, content) {
    const a = this.rec.alerts[this.rec.alerts.length - 1];
    if (!this.ok(a, `an alert "${title}"`)) return;
    this.equal(a.title, title, 'alert title');
    if (content !== undefined) this.equal(a.content, content, 'alert content');
  }

  noAlert() {
    this.equal(this.rec.alerts.length, 0, 'alerts shown');
  }

  toast(content) {
    this.ok(this.rec.toasts.some((x) => x.content === content), `a toast "${content}"`);
  }

  noToast() {
    this.equal(this.rec.toasts.length, 0, 'toasts shown');
  }

  flags(expected) {
    for (const [k, v] of Object.entries(expected)) this.equal(this.page.data[k], v, k);
  }

  placeholdersSent() {
    const body = this.initBody();
    if (!this.ok(body && body.serviceParameters, 'an init body')) return;
    this.equal(body.serviceParameters.certNo, PLACEHOLDER_CERT_NO, 'empty inputs send the placeholder certNo');
    this.equal(body.serviceParameters.certName, PLACEHOLDER_CERT_NAME, 'empty inputs send the placeholder certName');
  }

  httpErrorShown(status, title) {
    const failed = this.rec.requests.filter((r) => r.status === status);
    if (!this.ok(failed.length > 0, `an HTTP ${status} answer`)) return;
    const response = failed[failed.length - 1].response;
    const message = response && response.error && response.error.message;
    this.ok(typeof message === 'string' && message.length > 0, 'the error body has error.message');
    this.alert(title, message);
    this.equal(this.page.data.errorMessage, message, "the page shows the server's error.message");
    this.equal(this.page.data.phase, 'error', 'phase');
  }
}

// ---------------------------------------------------------------------------------------------
// runner

// A fresh demo user per scenario (its own daily attempt budget), or null when the backend has
// no demo login (404: the scenarios then run anonymously). Any other answer is an error.
async function login(ctx, index) {
  if (ctx.loginAvailable === false) return null;
  const username = `harness-${process.pid}-${Date.now().toString(36)}-${index}`;
  let res;
  try {
    res = await jsonRequest(`${ctx.origin}/login`, 'POST', { username });
  } catch (e) {
    return null; // unreachable backend: the scenario reports what the page did
  }
  if (res.status === 200 && res.data && typeof res.data.token === 'string') {
    ctx.loginAvailable = true;
    return res.data.token;
  }
  if (res.status === 404 || res.status === 405) {
    ctx.loginAvailable = false;
    return null;
  }
  throw new Error(`POST /login answered HTTP ${res.status}: ${res.text.slice(0, 200)}`);
}

async function runScenario(ctx, sc, index) {
  const rec = { alerts: [], toasts: [], requests: [], calls: [], setData: [] };
  const state = { outcomes: sc.outcomes.slice(), offline: false, httpErrorsAsFail: !!sc.httpErrorsAsFail };
  const app = { globalData: { token: null } };
  const baseUrl = sc.unreachable ? `http://127.0.0.1:${await unusedPort()}${ctx.prefix}` : ctx.origin + ctx.prefix;
  const definition = createCertifyPage(makeMy(ctx, rec, state), {
    config: Object.assign({ baseUrl, timeout: 10000 }, sc.config || {}),
    getApp: () => app,
  });
  const page = instantiate(definition, rec);
  const t = new Checks(page, rec, state);
  let serverStatus = null;
  let token = null;
  try {
    token = await login(ctx, index);
    app.globalData.token = token;
    if (sc.inputs) {
      page.onNameInput({ detail: { value: sc.inputs.certName } });
      page.onCertNoInput({ detail: { value: sc.inputs.certNo } });
    }
    if (sc.drive) await sc.drive(page, t);
    else await page.startCertify();
    const wanted = sc.expect(t);
    t.ok(state.outcomes.length === 0, `every scripted outcome was used (${state.outcomes.length} left)`);
    for (const call of rec.calls) {
      t.ok(!call.error, `open-certify call: ${call.error}`);
      t.equal(call.sandboxStatus, 200, 'sandbox POST status');
      if (typeof call.pageStatus === 'number') {
        t.equal(call.pageStatus, 200, 'the certifyUrl serves the sandbox page');
        t.ok(call.pageShowsCertifyId, 'the sandbox page shows the certifyId');
      }
    }
    if (page.data.certifyId) {
      const headers = token ? { authorization: `Bearer ${token}` } : {};
      const url = `${ctx.origin}${ctx.prefix}/result/${encodeURIComponent(page.data.certifyId)}`;
      const res = await jsonRequest(url, 'GET', undefined, headers);
      serverStatus = res.data && res.data.status ? res.data.status : `HTTP ${res.status}`;
    }
    if (wanted !== undefined) {
      const allowed = Array.isArray(wanted) ? wanted : [wanted];
      t.ok(allowed.includes(serverStatus), `server status ${JSON.stringify(serverStatus)} in ${JSON.stringify(allowed)}`);
    }
  } catch (e) {
    t.failures.push(`crashed: ${e && e.stack ? e.stack : e}`);
  }
  return {
    scenario: sc.name,
    ok: t.failures.length === 0,
    failures: t.failures,
    certifyId: page.data.certifyId || null,
    shown: {
      phase: page.data.phase,
      notice: page.data.notice,
      verdict: page.data.verdict,
      errorMessage: page.data.errorMessage,
      canRetry: page.data.canRetry,
      canRefresh: page.data.canRefresh,
      alerts: rec.alerts,
      toasts: rec.toasts,
    },
    verifyResults: rec.calls.map((c) => c.delivered || null),
    certifyPage: rec.calls.map((c) => c.pageStatus === undefined ? null : c.pageStatus),
    serverStatus,
    user: token ? 'login' : 'anonymous',
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write('usage: node harness.js [ORIGIN] [--prefix /alicertify] [--only NAME[,NAME]] [--list]\n');
    return 0;
  }
  if (args.list) {
    for (const sc of SCENARIOS) process.stdout.write(`${sc.name}\n`);
    return 0;
  }
  const ctx = { origin: args.origin, prefix: args.prefix };
  const scenarios = args.only ? SCENARIOS.filter((s) => args.only.includes(s.name)) : SCENARIOS;
  if (scenarios.length === 0) {
    process.stderr.write(`no scenario matches ${args.only}\n`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  for (const [index, sc] of scenarios.entries()) {
    // eslint-disable-next-line no-await-in-loop
    const line = await runScenario(ctx, sc, index);
    if (line.ok) passed += 1;
    else failed += 1;
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    process.exitCode = 2;
  },
);
