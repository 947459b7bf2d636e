import { Element, xml } from '@natter/xml';
import { NS } from './namespaces.js';

/** XEP-0004 data forms. */
export type FormType = 'form' | 'submit' | 'cancel' | 'result';
export type FieldType =
  | 'boolean'
  | 'fixed'
  | 'hidden'
  | 'jid-multi'
  | 'jid-single'
  | 'list-multi'
  | 'list-single'
  | 'text-multi'
  | 'text-private'
  | 'text-single';

export interface FormField {
  var?: string;
  type?: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  values: string[];
  options?: { label?: string; value: string }[];
}

export interface DataForm {
  type: FormType;
  title?: string;
  instructions?: string;
  fields: FormField[];
}

/** Reads a `<x xmlns='jabber:x:data'/>` element. */
export function parseForm(el: Element): DataForm {
  const fields: FormField[] = [];
  for (const f of el.getChildren('field', NS.dataForms)) {
    fields.push({
      var: f.attr('var'),
      type: f.attr('type') as FieldType | undefined,
      label: f.attr('label'),
      desc: f.getChildText('desc', NS.dataForms),
      required: f.getChild('required', NS.dataForms) !== undefined,
      values: f.getChildren('value', NS.dataForms).map((v) => v.text()),
      options: f.getChildren('option', NS.dataForms).map((o) => ({
        label: o.attr('label'),
        value: o.getChildText('value', NS.dataForms) ?? '',
      })),
    });
  }
  return {
    type: (el.attr('type') as FormType | undefined) ?? 'form',
    title: el.getChildText('title', NS.dataForms),
    instructions: el.getChildText('instructions', NS.dataForms),
    fields,
  };
}

/** The FORM_TYPE hidden field's value, if any. */
export function formType(form: DataForm): string | undefined {
  return form.fields.find((f) => f.var === 'FORM_TYPE')?.values[0];
}

/** First value of a field. */
export function fieldValue(form: DataForm, name: string): string | undefined {
  return form.fields.find((f) => f.var === name)?.values[0];
}

/** All values of a field (undefined when the field is absent). */
export function fieldValues(form: DataForm, name: string): string[] | undefined {
  return form.fields.find((f) => f.var === name)?.values;
}

/** XEP-0004 §3.3: boolean fields accept 1/0/true/false. Returns undefined for anything else. */
export function parseBoolean(value: string | undefined): boolean | undefined {
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  return undefined;
}

export function buildForm(form: DataForm & { formType?: string }): Element {
  return xml(
    'x',
    { xmlns: NS.dataForms, type: form.type },
    form.title !== undefined && xml('title', null, form.title),
    form.instructions !== undefined && xml('instructions', null, form.instructions),
    form.formType !== undefined &&
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, form.formType)),
    form.fields.map((f) =>
      xml(
        'field',
        { var: f.var, type: f.type, label: f.label },
        f.desc !== undefined && xml('desc', null, f.desc),
        f.required && xml('required'),
        f.values.map((v) => xml('value', null, v)),
        (f.options ?? []).map((o) => xml('option', { label: o.label }, xml('value', null, o.value))),
      ),
    ),
  );
}
