import type { Converter } from '../converter.js';

/**
 * XTN → ContactPoint.value (the IG's XTN[ContactPoint]): the e-mail address (XTN-4) for Internet/X.400
 * equipment, else the number assembled from country (5), area (6), local number (7) and extension (8),
 * else the unformatted number (12), else the deprecated formatted XTN-1.
 */
export const telecomValue: Converter = (el) => {
  const equipment = el.text(3).toUpperCase();
  const email = el.text(4);
  if (email !== '' && (equipment === 'INTERNET' || equipment === 'X.400' || equipment === '')) {
    if (equipment !== '' || el.text(7) === '') return email;
  }
  const local = el.text(7);
  if (local !== '') {
    const country = el.text(5);
    const area = el.text(6);
    const ext = el.text(8);
    let out = country !== '' ? `+${country.replace(/^\+/, '')} ` : '';
    if (area !== '') out += `(${area}) `;
    out += local;
    if (ext !== '') out += ` ext. ${ext}`;
    return out;
  }
  const unformatted = el.text(12);
  if (unformatted !== '') return unformatted;
  const formatted = el.text(1);
  return formatted === '' ? undefined : formatted;
};
