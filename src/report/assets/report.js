// The campaign table's filters and sorting. The numbers are added up the way
// src/report/campaigns.rs adds them and formatted the way src/report/format.rs formats them,
// so a re-rendered table reads exactly like the one the page was written with.
(function () {
  'use strict';
  var DASH = '\u2014';
  var STYLES = { USD: ['$', 2], EUR: ['\u20ac', 2], GBP: ['\u00a3', 2], KRW: ['\u20a9', 0], JPY: ['\u00a5', 0] };
  var dataNode = document.getElementById('report-data');
  var table = document.getElementById('campaign-table');
  if (!dataNode || !table) { return; }
  var data = JSON.parse(dataNode.textContent);
  var cur = data.currency;

  function group(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function money(micros) {
    var st = STYLES[cur] || [cur + ' ', 2];
    var unit = Math.pow(10, 6 - st[1]);
    var scaled = Math.floor((Math.abs(micros) + Math.floor(unit / 2)) / unit);
    var sign = micros < 0 && scaled > 0 ? '-' : '';
    if (st[1] === 0) { return sign + st[0] + group(scaled); }
    var minor = Math.pow(10, st[1]);
    var frac = String(scaled % minor);
    while (frac.length < st[1]) { frac = '0' + frac; }
    return sign + st[0] + group(Math.floor(scaled / minor)) + '.' + frac;
  }
  function pct(share, decimals) {
    if (share === null || !isFinite(share)) { return DASH; }
    var scale = Math.pow(10, decimals);
    return (Math.round(share * 100 * scale) / scale).toFixed(decimals) + '%';
  }

  // facts: [campaign, day, spend, installs, fraud, ret1, ret7, p30, p90, p180, n, sum, sumsq]
  function aggregate(facts, cohorts) {
    var h = data.headline;
    var r = { spend: 0, installs: 0, fraud: 0, cpi: null, fraud_share: null, retention: [null, null],
              pltv: [null, null, null], roas: [null, null, null], interval: null, payback: DASH, payback_day: null };
    var retNum = [0, 0], retDen = [0, 0], pSum = [0, 0, 0], pInst = [0, 0, 0], pSpend = [0, 0, 0], pDays = [0, 0, 0];
    var n = 0, s = 0, q = 0;
    facts.forEach(function (f) {
      r.spend += f[2]; r.installs += f[3]; r.fraud += f[4];
      for (var k = 0; k < 2; k++) {
        if (f[5 + k] !== null) { retNum[k] += f[5 + k] * f[3]; retDen[k] += f[3]; }
      }
      for (var j = 0; j < 3; j++) {
        if (f[7 + j] !== null) {
          pSum[j] += f[7 + j]; pInst[j] += f[3]; pSpend[j] += f[2]; pDays[j] += 1;
          if (j === h) { n += f[10]; s += f[11]; q += f[12]; }
        }
      }
    });
    if (r.installs > 0 && r.spend > 0) { r.cpi = r.spend / r.installs; }
    if (r.installs + r.fraud > 0) { r.fraud_share = r.fraud / (r.installs + r.fraud); }
    for (var k = 0; k < 2; k++) { if (retDen[k] > 0) { r.retention[k] = retNum[k] / retDen[k]; } }
    for (var j = 0; j < 3; j++) {
      if (pDays[j] > 0 && pInst[j] > 0) { r.pltv[j] = pSum[j] / pInst[j]; }
      if (pDays[j] > 0 && pSpend[j] > 0) { r.roas[j] = pSum[j] / pSpend[j]; }
    }
    if (n >= 2) {
      var mean = s / n;
      var v = Math.max((q - s * s / n) / (n - 1), 0);
      var se = Math.sqrt(v / n);
      r.interval = [Math.max(mean - data.z90 * se, 0), mean + data.z90 * se];
    }
    if (r.cpi !== null) {
      var byDay = {};
      cohorts.forEach(function (c) {
        var e = byDay[c[2]] || (byDay[c[2]] = [0, 0]);
        e[0] += c[4]; e[1] += c[3];
      });
      var days = Object.keys(byDay).map(Number).sort(function (a, b) { return a - b; });
      var hit = days.find(function (d) { return byDay[d][1] > 0 && byDay[d][0] / byDay[d][1] >= r.cpi; });
      if (hit !== undefined) { r.payback = 'D' + hit; r.payback_day = hit; }
      else {
        for (var m = 0; m < 3; m++) {
          if (r.pltv[m] !== null && r.pltv[m] >= r.cpi) {
            r.payback = 'D' + data.horizons[m] + ' (predicted)'; r.payback_day = data.horizons[m]; break;
          }
        }
      }
    }
    return r;
  }

  // [sort key, text, second line or null] per column, as campaigns.rs `cells`.
  function cells(c, r) {
    var h = data.headline;
    var pltv = h === null ? null : r.pltv[h];
    var roas = h === null ? null : r.roas[h];
    var interval = null;
    if (pltv !== null && r.interval) {
      interval = money(Math.round(r.interval[0])) + '\u2013' + money(Math.round(r.interval[1]));
    }
    var name = c.name === null ? c.campaign_id : c.name;
    return [
      [c.channel, c.channel, null], [name, name, c.campaign_id],
      [c.platform_text, c.platform_text, null], [c.country_text, c.country_text, null],
      [r.spend, money(r.spend), null], [r.installs, group(r.installs), null],
      [r.cpi, r.cpi === null ? DASH : money(Math.round(r.cpi)), null],
      [r.fraud_share, pct(r.fraud_share, 1), null], [r.retention[0], pct(r.retention[0], 1), null],
      [r.retention[1], pct(r.retention[1], 1), null],
      [pltv, pltv === null ? DASH : money(Math.round(pltv)), interval], [roas, pct(roas, 0), null],
      [r.payback_day, r.payback, null]
    ];
  }

  var tbody = table.tBodies[0];
  var sortCol = 4, sortDesc = true;
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var f = {
    channel: document.getElementById('f-channel'), platform: document.getElementById('f-platform'),
    country: document.getElementById('f-country'), from: document.getElementById('f-from'), to: document.getElementById('f-to')
  };

  function keyOf(td) {
    var v = td.getAttribute('data-sort');
    return v;
  }
  function compare(a, b) {
    var ka = keyOf(a.cells[sortCol]), kb = keyOf(b.cells[sortCol]);
    var res = 0;
    if (sortCol >= 4) {
      var na = ka === '' ? null : Number(ka), nb = kb === '' ? null : Number(kb);
      if (na === null && nb !== null) { return 1; }
      if (nb === null && na !== null) { return -1; }
      if (na !== null && nb !== null) { res = na - nb; }
    } else {
      res = ka < kb ? -1 : ka > kb ? 1 : 0;
    }
    if (sortDesc) { res = -res; }
    if (res !== 0) { return res; }
    var ca = a.getAttribute('data-key'), cb = b.getAttribute('data-key');
    return ca < cb ? -1 : ca > cb ? 1 : 0;
  }
  function sortRows() {
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.forEach(function (row) {
      if (!row.getAttribute('data-key')) {
        row.setAttribute('data-key', row.cells[0].textContent + '\u0000' + row.cells[1].querySelector('.id').textContent);
      }
    });
    rows.sort(compare).forEach(function (row) { tbody.appendChild(row); });
    headers.forEach(function (th, k) {
      if (k === sortCol) { th.setAttribute('aria-sort', sortDesc ? 'descending' : 'ascending'); }
      else { th.removeAttribute('aria-sort'); }
    });
  }

  function render() {
    var from = f.from.value || '0000-00-00', to = f.to.value || '9999-99-99';
    var ch = f.channel.value, pl = f.platform.value, co = f.country.value;
    var keep = data.campaigns.map(function (c) {
      return (!ch || c.channel === ch) && (!pl || c.platforms.indexOf(pl) >= 0) && (!co || c.countries.indexOf(co) >= 0);
    });
    var facts = data.campaigns.map(function () { return []; });
    var cohorts = data.campaigns.map(function () { return []; });
    data.facts.forEach(function (x) { if (keep[x[0]] && x[1] >= from && x[1] <= to) { facts[x[0]].push(x); } });
    data.cohorts.forEach(function (x) { if (keep[x[0]] && x[1] >= from && x[1] <= to) { cohorts[x[0]].push(x); } });
    while (tbody.rows.length) { tbody.deleteRow(0); }
    var shown = 0;
    data.campaigns.forEach(function (c, i) {
      if (!facts[i].length) { return; }
      shown += 1;
      var tr = tbody.insertRow();
      cells(c, aggregate(facts[i], cohorts[i])).forEach(function (cell, k) {
        var td = tr.insertCell();
        td.setAttribute('data-sort', cell[0] === null ? '' : String(cell[0]));
        if (k >= 4) { td.className = 'num'; }
        var main = document.createElement('span'); main.className = 'name'; main.textContent = cell[1];
        td.appendChild(main);
        if (cell[2] !== null) {
          var sub = document.createElement('span'); sub.className = 'id'; sub.textContent = cell[2];
          td.appendChild(sub);
        }
      });
    });
    sortRows();
    document.getElementById('campaign-count').textContent = shown + ' campaigns';
    document.getElementById('campaign-empty').hidden = shown > 0;
  }

  headers.forEach(function (th, k) {
    var b = th.querySelector('button');
    if (!b) { return; }
    b.addEventListener('click', function () {
      if (sortCol === k) { sortDesc = !sortDesc; } else { sortCol = k; sortDesc = k >= 4; }
      sortRows();
    });
  });
  [f.channel, f.platform, f.country, f.from, f.to].forEach(function (el) { el.addEventListener('change', render); });
  var form = document.getElementById('campaign-filters');
  form.addEventListener('submit', function (e) { e.preventDefault(); });
  form.addEventListener('reset', function () { setTimeout(render, 0); });
  sortRows();
}());
