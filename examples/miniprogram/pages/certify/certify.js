// The page registration only: the logic lives in logic.js, a plain CommonJS factory, so the
// same code runs here and under Node (tests/clients/node/harness.js) with a simulated `my`.
const { createCertifyPage } = require('./logic');
const config = require('../../config');

Page(createCertifyPage(my, { config, getApp }));
